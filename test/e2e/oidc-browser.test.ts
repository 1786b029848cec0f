/**
 * The login in a real browser: Debian's chromium (playwright-core, headless) against the
 * shipped nginx config, sessiongate with `login.oidc`, and a real OpenID Provider. The browser
 * follows every redirect, fills the provider's form, keeps its cookies by its own rules
 * (SameSite across the two sites, Secure on loopback), and the test reads the cookies as the
 * browser stored them. Two tabs log in at once; a logout goes through the provider and back.
 * A missing chromium fails these tests (the README's test command installs it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LaunchedBrowser, launchChromium, submitProviderLogin } from '../../harness/browser.js';
import { ACCOUNTS, type OidcStack, startOidcStack } from '../support/oidc.js';

let stack: OidcStack;
let browser: LaunchedBrowser;

beforeAll(async () => {
  stack = await startOidcStack();
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

const atProvider = (u: URL) => u.origin === new URL(stack.op.issuer).origin;
const bodyJson = async (page: import('playwright-core').Page) =>
  JSON.parse(((await page.locator('body').textContent()) ?? '').trim()) as { url: string; headers: Record<string, string> };

describe('a real browser', () => {
  it('logs in through the provider and lands on the page it asked for, with the cookie stored as sent', async () => {
    const { context, page } = await browser.newSession();
    try {
      await page.goto(`${stack.url}/app/first?x=1`);
      expect(atProvider(new URL(page.url()))).toBe(true);
      await submitProviderLogin(page, 'alice', 'pw', `${stack.url}/app/first?x=1`);
      await page.waitForLoadState();
      const seen = await bodyJson(page);
      expect(seen.url).toBe('/app/first?x=1');
      expect(seen.headers['x-user-id']).toBe(ACCOUNTS['alice']!.sub);
      expect(seen.headers['x-user-email']).toBe('alice@example.com');

      const cookies = await context.cookies(stack.url);
      const session = cookies.find((c) => c.name === 'sessiongate');
      expect(session).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Lax', path: '/', domain: '127.0.0.1' });
      // Persistent until the session's absolute end (12 h by default), not a browser-session cookie.
      const hours = (session!.expires * 1000 - Date.now()) / 3_600_000;
      expect(hours).toBeGreaterThan(11.9);
      expect(hours).toBeLessThanOrEqual(12);
      // The flow cookie was dropped when the login finished.
      expect((await context.cookies(`${stack.url}/~login/callback`)).filter((c) => c.name.startsWith('sessiongate_login_'))).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('two tabs logging in at once both succeed, each landing where it started', async () => {
    const { context, page: one } = await browser.newSession();
    try {
      const two = await context.newPage();
      await one.goto(`${stack.url}/app/one`);
      await two.goto(`${stack.url}/app/two`);
      expect(atProvider(new URL(one.url()))).toBe(true);
      expect(atProvider(new URL(two.url()))).toBe(true);
      // Both flows are open: one cookie each, neither overwrote the other.
      const flows = (await context.cookies(`${stack.url}/~login/callback`)).filter((c) => c.name.startsWith('sessiongate_login_'));
      expect(flows).toHaveLength(2);
      expect(flows.every((c) => c.httpOnly && c.sameSite === 'Lax' && c.path === '/~login')).toBe(true);

      await submitProviderLogin(one, 'bob', 'pw', `${stack.url}/app/one`);
      await submitProviderLogin(two, 'bob', 'pw', `${stack.url}/app/two`);
      for (const [page, path] of [
        [one, '/app/one'],
        [two, '/app/two'],
      ] as const) {
        await page.waitForLoadState();
        const seen = await bodyJson(page);
        expect(seen.url).toBe(path);
        expect(seen.headers['x-user-id']).toBe(ACCOUNTS['bob']!.sub);
      }
    } finally {
      await context.close();
    }
  });

  it('logs out through the provider: back on the site, logged out here and there', async () => {
    const { context, page } = await browser.newSession();
    try {
      await page.goto(`${stack.url}/app`);
      await submitProviderLogin(page, 'alice', 'pw', `${stack.url}/app`);
      expect((await context.cookies(stack.url)).some((c) => c.name === 'sessiongate')).toBe(true);

      const requested: string[] = [];
      page.on('request', (r) => requested.push(r.url()));
      await page.goto(`${stack.url}/~logout?rd=/bye`);
      // The provider's confirmation page: "Yes, sign me out".
      expect(atProvider(new URL(page.url()))).toBe(true);
      expect(new URL(page.url()).pathname).toBe('/session/end');
      await Promise.all([
        page.waitForURL((u) => atProvider(u) && u.pathname.startsWith('/interaction/'), { waitUntil: 'commit' }),
        page.locator('button[name="logout"][value="yes"]').click(),
      ]);
      // Back on the site at /bye (protected: sent to log in), and the provider asks for the
      // password again: its session ended too.
      expect(requested.some((u) => u.startsWith(`${stack.url}/bye`))).toBe(true);
      expect((await context.cookies(stack.url)).some((c) => c.name === 'sessiongate')).toBe(false);
      await expect(page.locator('input[name="password"]').count()).resolves.toBe(1);
    } finally {
      await context.close();
    }
  });
});
