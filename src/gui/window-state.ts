/** Whether the app window is showing: 'unknown' when the dashboard opened in the default browser. */
export type WindowState = 'open' | 'closed' | 'unknown';
