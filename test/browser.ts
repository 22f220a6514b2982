// Chromium for the dashboard: its test (test/dashboard.test.ts), its benchmark
// (bench/ui.ts) and its screenshots (scripts/screenshots.mjs) drive the real
// browser (Debian's chromium) through playwright-core. The control plane's own
// CA is trusted by its public key (Chromium's --ignore-certificate-errors-spki-list),
// so any other certificate still fails as it would for a user: no blanket
// ignoreHTTPSErrors.
import fs from 'node:fs';
import { createHash, X509Certificate } from 'node:crypto';
import { chromium, type Browser, type BrowserContext, type Locator, type Page, type Request } from 'playwright-core';

export const CHROMIUM = process.env.OUTPOST_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Whether Chromium is here: false, or why not (printed; the caller skips).
 * With OUTPOST_REQUIRE_BROWSER=1 (CI) a missing browser throws instead.
 */
export function browserOrSkip(): string | false {
  let reason: string | false = false;
  try {
    fs.accessSync(CHROMIUM, fs.constants.X_OK);
  } catch {
    reason = `no Chromium at ${CHROMIUM} (apt-get install chromium, or set OUTPOST_CHROMIUM to its path)`;
  }
  if (reason && process.env.OUTPOST_REQUIRE_BROWSER === '1') throw new Error(`OUTPOST_REQUIRE_BROWSER=1 but ${reason}`);
  if (reason) console.log(`# browser tests skipped: ${reason}`);
  return reason;
}

/** base64 of the SHA-256 of a certificate's public key (SPKI), as Chromium's pin list takes it */
export function spkiHash(certPem: string): string {
  const der = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64');
}

/** Headless Chromium that trusts certificates chaining to this CA (the control plane's ca.crt). */
export function launch(caPem: string): Promise<Browser> {
  // --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', `--ignore-certificate-errors-spki-list=${spkiHash(caPem)}`] });
}

export interface Tab {
  context: BrowserContext;
  page: Page;
  /** every URL the page asked for: documents, scripts, fetches, WebSockets */
  urls: string[];
  /** uncaught exceptions and console errors (a CSP refusal is one), but not the browser's note of a failed request: */
  errors: string[];
  /** answers of 400 and above: `STATUS METHOD URL` */
  failed: string[];
}

/**
 * A new context (its own storage and cache: a first visit) with one page,
 * recording what it requests and what goes wrong in it. With `token`, the
 * tab starts signed in: the token is put in sessionStorage before the
 * dashboard's script runs (by an init script, never through a URL).
 */
export async function newTab(browser: Browser, base: string, o: { token?: string; viewport?: { width: number; height: number } } = {}): Promise<Tab> {
  const context = await browser.newContext({ viewport: o.viewport ?? { width: 1400, height: 1000 } });
  if (o.token) {
    await context.addInitScript(([origin, t]) => {
      if (location.origin === origin) sessionStorage.setItem('outpost.token', t);
    }, [new URL(base).origin, o.token] as const);
  }
  const page = await context.newPage();
  const urls: string[] = [];
  const errors: string[] = [];
  const failed: string[] = [];
  context.on('request', (r) => urls.push(r.url()));
  context.on('response', (r) => { if (r.status() >= 400) failed.push(`${r.status()} ${r.request().method()} ${r.url()}`); });
  page.on('websocket', (ws) => urls.push(ws.url()));
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(`console: ${m.text()}`); });
  return { context, page, urls, errors, failed };
}

/**
 * Opens the dashboard at `url` and waits until its shell has replaced the
 * boot message (with the sign-in form, or the page when signed in). Again
 * when Chromium aborted a request of it with ERR_NETWORK_CHANGED: it does
 * when this machine's interfaces change (another test's containers or
 * network namespaces coming and going), which says nothing about the page.
 */
export async function visit(page: Page, url: string): Promise<void> {
  for (let i = 0; ; i++) {
    let changed = false;
    const failed = (r: Request): void => { changed ||= /ERR_NETWORK_CHANGED/.test(r.failure()?.errorText ?? ''); };
    page.on('requestfailed', failed);
    try {
      await page.goto(url);
      await page.waitForSelector('#root > :not(.boot)', { timeout: 15_000 });
      return;
    } catch (e) {
      if (i >= 3 || !(changed || /ERR_NETWORK_CHANGED/.test((e as Error).message))) throw e;
    } finally {
      page.off('requestfailed', failed);
    }
  }
}

/** Signs in through the form as a user does; resolves when the shell's navigation shows. */
export async function signIn(page: Page, token: string): Promise<void> {
  await page.fill('form.signin input[name=token]', token);
  await page.click('form.signin button[type=submit]');
  await page.waitForSelector('nav .brand');
}

/** Opens a page of the signed-in dashboard by its hash route (`#/apps/NAME`), as a click on a link does: no reload. */
export async function show(page: Page, ...route: string[]): Promise<void> {
  await page.evaluate((h) => { location.hash = h; }, `#/${route.map(encodeURIComponent).join('/')}`);
  await page.waitForSelector(`main[data-page="${route[0]}"]`);
}

/** The row of a dashboard Table (its `label`) whose key is `key`. */
export function row(page: Page, table: string, key: string): Locator {
  return page.locator(`[data-table=${JSON.stringify(table)}] [role=row][data-key=${JSON.stringify(key)}]`);
}

/** A mark left in the page's window: still there later means the page was not reloaded in between. */
export async function markPage(page: Page): Promise<() => Promise<boolean>> {
  const mark = Math.random().toString(36).slice(2);
  await page.evaluate((m) => { (window as unknown as { outpostMark: string }).outpostMark = m; }, mark);
  return async () => (await page.evaluate(() => (window as unknown as { outpostMark?: string }).outpostMark)) === mark;
}
