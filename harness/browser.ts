/**
 * A real browser for the login tests: Debian's chromium (/usr/bin/chromium, installed by
 * scripts/test.sh) driven by playwright-core, headless, with a fresh profile per launch.
 *
 * A missing chromium is a failure, not a skip: `chromiumProblem()` says why, and
 * `launchChromium()` throws with that reason.
 *
 * Every host name other than the loopback ones resolves to nothing (--host-resolver-rules), so a
 * page cannot wait on the network (oidc-provider's pages import a Google font) and a test cannot
 * reach the outside by mistake.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
];

/** Why chromium cannot be used here, or null when it can. */
export function chromiumProblem(path = CHROMIUM_PATH): string | null {
  if (!existsSync(path)) return `${path} is missing: run scripts/test.sh (it installs Debian's chromium) or apt-get install chromium`;
  try {
    accessSync(path, constants.X_OK);
  } catch {
    return `${path} is not executable`;
  }
  return null;
}

export interface LaunchedBrowser {
  readonly browser: Browser;
  readonly context: BrowserContext;
  readonly page: Page;
  /** A new isolated context (its own cookies) with one page. */
  newSession(): Promise<{ context: BrowserContext; page: Page }>;
  close(): Promise<void>;
}

/** Launches headless chromium with one context and page. Throws when chromium is unavailable. */
export async function launchChromium(opts: { executablePath?: string; args?: string[]; timeoutMs?: number } = {}): Promise<LaunchedBrowser> {
  const executablePath = opts.executablePath ?? CHROMIUM_PATH;
  const problem = chromiumProblem(executablePath);
  if (problem) throw new Error(`chromium unavailable: ${problem}`);
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [...CHROMIUM_ARGS, ...(opts.args ?? [])],
    timeout: opts.timeoutMs ?? 30_000,
  });
  const newSession = async () => {
    const context = await browser.newContext();
    context.setDefaultTimeout(10_000);
    return { context, page: await context.newPage() };
  };
  const first = await newSession();
  return {
    browser,
    context: first.context,
    page: first.page,
    newSession,
    close: () => browser.close(),
  };
}

/**
 * On a page showing oidc-provider's login form (devInteractions: inputs `login` and `password`,
 * a submit button), signs in and waits until the browser is at a URL `until` accepts.
 */
export async function submitProviderLogin(page: Page, login: string, password: string, until: string | RegExp | ((url: URL) => boolean)): Promise<void> {
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill(password);
  await Promise.all([page.waitForURL(until, { waitUntil: 'commit' }), page.locator('button[type="submit"]').click()]);
}
