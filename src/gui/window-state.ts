/**
 * Whether the app window is showing: 'minimized' while it is open but iconified, 'unknown' when the
 * dashboard opened in a browser we do not control (the default browser, or one that took the link over).
 */
export type WindowState = 'open' | 'minimized' | 'closed' | 'unknown';
