/** Starts Debian's Chromium headless through playwright-core, set up to stay off the network. */
import { existsSync } from 'node:fs';
import { type Browser, type BrowserContext, chromium } from 'playwright-core';

/** The browser the tests drive: $MTT_CHROMIUM, else Debian's /usr/bin/chromium. */
export function chromiumPath(): string {
  const path = process.env.MTT_CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(path)) {
    throw new Error(`no Chromium at ${path}: run "apt-get install -y chromium" or set MTT_CHROMIUM`);
  }
  return path;
}

export interface TestBrowser {
  browser: Browser;
  /** A fresh context; colorScheme picks light or dark. */
  context(opts?: {
    colorScheme?: 'light' | 'dark';
    width?: number;
    height?: number;
    /** Emulate Windows High Contrast / forced colors. */
    forcedColors?: boolean;
    /** Let a test inject scripts (axe-core) past the dashboard's CSP. */
    bypassCSP?: boolean;
  }): Promise<BrowserContext>;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<TestBrowser> {
  const browser = await chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    timeout: 30_000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  return {
    browser,
    context: (opts = {}) =>
      browser.newContext({
        colorScheme: opts.colorScheme ?? 'light',
        viewport: { width: opts.width ?? 1100, height: opts.height ?? 760 },
        deviceScaleFactor: 1,
        forcedColors: opts.forcedColors ? 'active' : 'none',
        bypassCSP: opts.bypassCSP ?? false,
      }),
    // Playwright gives every launch a fresh temporary profile and removes it on close.
    close: () => browser.close(),
  };
}
