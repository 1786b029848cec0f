/**
 * The gRPC Check port under abuse: missing fields, huge header maps, messages over the size
 * limit, bytes that are not protobuf, bytes that are not HTTP/2, many concurrent streams.
 * Every answer is a deny or a refusal, never an allow, and the server keeps serving.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EnvoyRequest, encodeCheckRequest, GRPC, RawEnvoyClient } from '../../harness/envoy-wire.js';
import { send } from '../../harness/http.js';
import { MAX_MESSAGE_BYTES } from '../../src/transport/envoy-grpc.js';
import { type Harness, HOST, startHarness } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

/** After each abuse: a good session is still allowed and a missing one still denied. */
async function stillServing(): Promise<void> {
  const cookie = await h.login('after');
  const ok = await h.grpc.check({ method: 'GET', path: '/app', host: HOST, headers: { cookie } });
  expect('response' in ok && ok.response.code).toBe(GRPC.OK);
  const no = await h.grpc.check({ method: 'GET', path: '/app', host: HOST, headers: {} });
  expect('response' in no && no.response.code).toBe(GRPC.UNAUTHENTICATED);
}

function notAllowed(out: Awaited<ReturnType<RawEnvoyClient['check']>>): void {
  if ('error' in out) expect(out.error.code).not.toBe(GRPC.OK);
  else expect(out.response.code).not.toBe(GRPC.OK);
}

describe('gRPC Check under abuse', () => {
  it('an empty CheckRequest: denied', async () => {
    notAllowed(await h.grpc.checkBytes(new Uint8Array(0)));
    await stillServing();
  });

  it('attributes without request.http, or no attributes: denied', async () => {
    notAllowed(await h.grpc.check({ method: 'GET', path: '/app', host: HOST, omitHttp: true }));
    notAllowed(await h.grpc.check({ method: 'GET', path: '/app', host: HOST, omitAttributes: true }));
    await stillServing();
  });

  it('an empty path or method: denied', async () => {
    notAllowed(await h.grpc.check({ method: '', path: '', host: HOST, headers: { cookie: await h.login() } }));
    notAllowed(await h.grpc.check({ method: 'GET', path: 'app', host: HOST, headers: {} }));
    await stillServing();
  });

  it('bytes that are not a CheckRequest: refused, never allowed', async () => {
    for (const bytes of [
      Buffer.from('GET / HTTP/1.1\r\n\r\n'),
      Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]),
      Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x7f]),
      Buffer.alloc(4096, 0x0a),
    ]) {
      notAllowed(await h.grpc.checkBytes(bytes));
    }
    await stillServing();
  });

  it('a huge header map without a session: denied', async () => {
    const headers: Record<string, string> = {};
    for (let i = 0; i < 20_000; i++) headers[`x-junk-${i}`] = 'v'.repeat(20);
    notAllowed(await h.grpc.check({ method: 'GET', path: '/app', host: HOST, headers }));
    await stillServing();
  });

  it('a huge header map around a good cookie: allowed as that user only', async () => {
    const headers: Record<string, string> = { cookie: await h.login('bulk') };
    for (let i = 0; i < 10_000; i++) headers[`x-user-id-${i}`] = 'FORGED';
    const out = await h.grpc.check({ method: 'GET', path: '/app', host: HOST, headers });
    expect('response' in out).toBe(true);
    if ('response' in out && out.response.code === GRPC.OK) {
      expect(out.response.ok!.headers.find((x) => x.key.toLowerCase() === 'x-user-id')?.value).toBe('bulk');
      expect(out.response.ok!.headers.every((x) => !x.value.includes('FORGED'))).toBe(true);
    }
    await stillServing();
  });

  it('a message over the size limit: RESOURCE_EXHAUSTED', async () => {
    const out = await h.grpc.check({ method: 'GET', path: '/app', host: HOST, headers: { 'x-big': 'x'.repeat(MAX_MESSAGE_BYTES + 1024) } });
    expect('error' in out && out.error.code).toBe(GRPC.RESOURCE_EXHAUSTED);
    await stillServing();
  });

  it('garbage bytes on the port (not HTTP/2): the connection is dropped, the server keeps serving', async () => {
    for (const garbage of [
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      Buffer.alloc(65536, 0x41),
      Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\xff\xff\xff\xff\xff\xff'),
    ]) {
      await new Promise<void>((resolve) => {
        const s = connect(h.svc.ports.grpc, '127.0.0.1', () => s.write(garbage));
        s.on('data', () => {});
        s.on('error', () => resolve());
        s.on('close', () => resolve());
        setTimeout(() => {
          s.destroy();
          resolve();
        }, 2000);
      });
    }
    await stillServing();
  });

  it('many concurrent streams: every answer is right for its own request', async () => {
    const users = await Promise.all(Array.from({ length: 20 }, (_, i) => h.login(`u${i}`)));
    const client = new RawEnvoyClient(`127.0.0.1:${h.svc.ports.grpc}`);
    try {
      const calls = Array.from({ length: 1000 }, (_, i) => {
        const good = i % 2 === 0;
        const cookie = good ? users[i % 20]! : `sessiongate=${'A'.repeat(43)}.${'B'.repeat(43)}.${'C'.repeat(43)}`;
        return client.check({ method: 'GET', path: '/app', host: HOST, headers: { cookie, 'x-user-id': 'FORGED' } }).then((out) => ({ i, out }));
      });
      for (const { i, out } of await Promise.all(calls)) {
        expect('response' in out, `call ${i}`).toBe(true);
        if (!('response' in out)) continue;
        // A spoofed X-User-Id on a protected path is a deny either way (spoof_guard: deny).
        expect(out.response.code, `call ${i}`).not.toBe(GRPC.OK);
        expect(out.response.metadata['reason']).toBe('spoofed_header');
      }
      const clean = await Promise.all(
        Array.from({ length: 400 }, (_, i) =>
          client
            .check({ method: 'GET', path: '/app', host: HOST, headers: { cookie: i % 2 === 0 ? users[i % 20]! : 'sessiongate=garbage' } })
            .then((out) => ({ i, out })),
        ),
      );
      for (const { i, out } of clean) {
        if (!('response' in out)) throw new Error(`call ${i}: ${out.error.message}`);
        if (i % 2 === 0) {
          expect(out.response.code).toBe(GRPC.OK);
          expect(out.response.ok!.headers.find((x) => x.key.toLowerCase() === 'x-user-id')?.value).toBe(`u${i % 20}`);
        } else {
          expect(out.response.code).toBe(GRPC.UNAUTHENTICATED);
        }
      }
    } finally {
      client.close();
    }
    await stillServing();
  });
});

/**
 * A CheckRequest says the same thing in several places: attributes.request.http.{path, method,
 * host, scheme} and the `:path`, `:method`, `:authority` (and `host`), `:scheme` headers; the
 * `headers` map and the `header_map` list. Envoy fills them from one source, so where two are
 * present and differ the request is not Envoy's, and whichever one sessiongate read, the
 * application might get the other: bad_request, never a decision on one of them.
 */
describe('gRPC Check: sources that disagree', () => {
  async function expectBadRequest(r: EnvoyRequest | Uint8Array, what: string): Promise<void> {
    const out = r instanceof Uint8Array ? await h.grpc.checkBytes(r) : await h.grpc.check(r);
    expect('response' in out, what).toBe(true);
    if (!('response' in out)) return;
    expect(out.response.code, what).toBe(GRPC.PERMISSION_DENIED);
    expect(out.response.metadata['reason'], what).toBe('bad_request');
  }

  it('http.path public, :path protected (and the other way round): bad_request', async () => {
    const cookie = await h.login('pathy');
    await expectBadRequest({ method: 'GET', path: '/~assets/app.css', host: HOST, headers: { ':path': '/admin/secret' } }, 'public path, protected :path');
    await expectBadRequest(
      { method: 'GET', path: '/admin/secret', host: HOST, headers: { cookie, ':path': '/~assets/app.css' } },
      'protected path, public :path',
    );
    await expectBadRequest({ method: 'GET', path: '/app', host: HOST, headers: { cookie, ':path': '/app?x=1' } }, 'query only in :path');
    await stillServing();
  });

  it('method, host and scheme that disagree with their pseudo-headers: bad_request', async () => {
    const cookie = await h.login('methody');
    await expectBadRequest({ method: 'GET', path: '/app', host: HOST, headers: { cookie, ':method': 'DELETE' } }, ':method');
    await expectBadRequest({ method: 'GET', path: '/app', host: HOST, headers: { cookie, ':authority': 'evil.example.net' } }, ':authority');
    await expectBadRequest({ method: 'GET', path: '/app', host: HOST, headers: { cookie, host: 'evil.example.net' } }, 'host');
    await expectBadRequest({ method: 'GET', path: '/app', host: HOST, scheme: 'https', headers: { cookie, ':scheme': 'http' } }, ':scheme');
    await stillServing();
  });

  it('headers and header_map both present and different: bad_request (an alias only in header_map is not missed)', async () => {
    const cookie = await h.login('mapped');
    const base = { method: 'GET', path: '/app', host: HOST };
    const same = [
      { key: ':authority', raw: HOST },
      { key: ':method', raw: 'GET' },
      { key: ':path', raw: '/app' },
      { key: ':scheme', raw: 'https' },
      { key: 'x-forwarded-proto', raw: 'https' },
      { key: 'cookie', raw: cookie },
    ];
    // The same headers in both: decided as usual.
    const ok = await h.grpc.check({ ...base, headers: { cookie }, headerMap: same });
    expect('response' in ok && ok.response.code).toBe(GRPC.OK);
    await expectBadRequest({ ...base, headers: { cookie }, headerMap: [...same, { key: 'x_user_id', raw: FORGED_ADMIN }] }, 'alias only in header_map');
    await expectBadRequest(
      { ...base, headers: { cookie }, headerMap: [...same, { key: 'X-User-Id', raw: FORGED_ADMIN }] },
      'identity header only in header_map',
    );
    await expectBadRequest({ ...base, headers: { cookie, 'x-extra': '1' }, headerMap: same }, 'a header only in headers');
    await expectBadRequest(
      { ...base, headers: { cookie }, headerMap: same.map((e) => (e.key === 'cookie' ? { key: 'cookie', raw: 'sessiongate=other' } : e)) },
      'another cookie',
    );
    await stillServing();
  });

  it('a header_map entry whose value and raw_value differ, or a repeated pseudo-header: bad_request', async () => {
    const cookie = await h.login('rawish');
    const pseudo = (path: string) => [
      { key: ':authority', raw: HOST },
      { key: ':method', raw: 'GET' },
      { key: ':path', raw: path },
      { key: 'cookie', raw: cookie },
    ];
    const ok = await h.grpc.check({ method: 'GET', path: '/app', host: HOST, rawHeaders: [], headerMap: pseudo('/app') });
    expect('response' in ok && ok.response.code).toBe(GRPC.OK);
    await expectBadRequest(
      {
        method: 'GET',
        path: '/app',
        host: HOST,
        rawHeaders: [],
        headerMap: [...pseudo('/app').filter((e) => e.key !== 'cookie'), { key: 'cookie', value: 'sessiongate=forged', raw: cookie }],
      },
      'cookie value and raw_value',
    );
    await expectBadRequest(
      {
        method: 'GET',
        path: '/app',
        host: HOST,
        rawHeaders: [],
        headerMap: [...pseudo('/app'), { key: 'accept', value: 'text/html', raw: 'application/json' }],
      },
      'value and raw_value',
    );
    await expectBadRequest(
      { method: 'GET', path: '/app', host: HOST, rawHeaders: [], headerMap: [...pseudo('/app'), { key: ':path', raw: '/admin/secret' }] },
      'two :path',
    );
    await stillServing();
  });

  it('a field the message repeats (protobuf would merge it): bad_request', async () => {
    const cookie = await h.login('twice');
    const a = encodeCheckRequest({ method: 'GET', path: '/~assets/app.css', host: HOST, headers: { cookie } });
    const b = encodeCheckRequest({ method: 'GET', path: '/admin/secret', host: HOST, headers: { cookie } });
    await expectBadRequest(Buffer.concat([a, b]), 'two CheckRequests back to back');
    await stillServing();
  });
});

describe('HTTP /auth: X-Original-* against X-Forwarded-*', () => {
  it('a forward-auth request whose two target headers disagree is bad_request', async () => {
    const cookie = await h.login('traefik');
    const ask = (headers: Array<[string, string]>) =>
      send(`${h.http()}/auth`, { headers: [['Cookie', cookie], ['X-Forwarded-Host', HOST], ['X-Forwarded-Proto', 'https'], ...headers] });
    // As Traefik sends it, with a client's own X-Original-URI passed along.
    const spoof = await ask([
      ['X-Forwarded-Method', 'GET'],
      ['X-Forwarded-Uri', '/admin/secret'],
      ['X-Original-URI', '/~assets/app.css'],
    ]);
    expect(spoof.status).toBe(403);
    expect(spoof.headers['x-sessiongate-reason']).toBe('bad_request');
    const method = await ask([
      ['X-Forwarded-Method', 'DELETE'],
      ['X-Original-Method', 'GET'],
      ['X-Forwarded-Uri', '/app'],
    ]);
    expect(method.headers['x-sessiongate-reason']).toBe('bad_request');
    const agree = await ask([
      ['X-Forwarded-Method', 'GET'],
      ['X-Forwarded-Uri', '/app'],
      ['X-Original-URI', '/app'],
    ]);
    expect(agree.status).toBe(200);
  });
});

const FORGED_ADMIN = 'admin';
