/**
 * The development login recipe, exactly as documented, through the shipped nginx config:
 * `/~session/dev` is routed to sessiongate (GET only), a relative rd and an absolute one back to
 * the request's own host:port are accepted without allowed_redirect_hosts, other hosts are not.
 * Without `user`, a form.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Service, startService } from '../../src/main.js';
import { cookiePair, send } from '../support/http.js';
import { type EchoUpstream, type RunningNginx, startEchoUpstream, startNginx } from '../support/processes.js';
import { quietLogger, testConfig } from '../support/service.js';

let sg: Service;
let app: EchoUpstream;
let nginx: RunningNginx;

beforeAll(async () => {
  // The recipe's environment: SESSIONGATE_HOST=127.0.0.1 SESSIONGATE_DEV_LOGIN=true SESSIONGATE_COOKIE_SECURE=false
  sg = await startService(testConfig({ SESSIONGATE_HOST: '127.0.0.1', SESSIONGATE_DEV_LOGIN: 'true', SESSIONGATE_COOKIE_SECURE: 'false' }), quietLogger());
  app = await startEchoUpstream();
  nginx = await startNginx({ sessiongatePort: sg.ports.http, appPort: app.port });
});

afterAll(async () => {
  await nginx?.stop();
  await app?.close();
  await sg?.close();
});

describe('development login through the shipped nginx', () => {
  it('rd=/ : a session, and back to / on the proxy, where the application sees the user', async () => {
    const login = await send(`${nginx.url}/~session/dev?user=alice&roles=admin&rd=/admin/`);
    expect(login.status).toBe(302);
    expect(login.headers['location']).toBe('/admin/');
    const cookie = cookiePair(login.cookies[0]!);
    const page = await send(`${nginx.url}/admin/`, { headers: [['Cookie', cookie]] });
    expect(page.status).toBe(200);
    const seen = page.json<{ headers: Record<string, string> }>().headers;
    expect(seen['x-user-id']).toBe('alice');
    expect(seen['x-user-roles']).toBe('admin');
  });

  it('an absolute rd to the host:port the browser used is accepted without allowed_redirect_hosts; another host is not', async () => {
    const host = `127.0.0.1:${nginx.port}`;
    const back = await send(`${nginx.url}/~session/dev?user=alice&roles=admin&rd=http://${host}/admin/`);
    expect(back.status).toBe(302);
    expect(back.headers['location']).toBe(`http://${host}/admin/`);
    for (const other of [`http://127.0.0.1:${nginx.port + 1}/admin/`, 'http://evil.example/', '//evil.example/']) {
      const r = await send(`${nginx.url}/~session/dev?user=alice&rd=${encodeURIComponent(other)}`);
      expect(r.status, other).toBe(400);
      expect(r.cookies).toEqual([]);
    }
  });

  it('without user: a form that keeps rd (HTML-escaped), served through nginx', async () => {
    const r = await send(`${nginx.url}/~session/dev?rd=${encodeURIComponent('/a?b=1&c="2"')}`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/html/);
    expect(r.cookies).toEqual([]);
    expect(r.body).toContain('<form method="get" action="/~session/dev">');
    expect(r.body).toContain('<input name="user" required');
    expect(r.body).toContain('name="rd" value="/a?b=1&amp;c=&quot;2&quot;"');
    // The form's submission: roles as typed, spaces and all.
    const submitted = await send(`${nginx.url}/~session/dev?user=bob&roles=admin%2C+ops&rd=%2F`);
    expect(submitted.status).toBe(302);
    const who = await send(`${nginx.url}/~session`, { headers: [['Cookie', cookiePair(submitted.cookies[0]!)]] });
    expect(who.json()).toMatchObject({ user_id: 'bob', roles: ['admin', 'ops'] });
  });

  it('only GET is routed: other methods are refused by nginx', async () => {
    const r = await send(`${nginx.url}/~session/dev?user=alice`, { method: 'POST', body: '' });
    expect(r.status).toBe(403);
    expect(r.cookies).toEqual([]);
  });
});
