/**
 * A scripted user agent for login flows without a browser: fetch with manual redirects, a cookie
 * jar close enough to a browser's for loopback testing, and an HTML form reader for the provider's
 * login and logout pages.
 *
 * The jar follows RFC 6265 where it matters here: cookies belong to a host NAME, not a port
 * (127.0.0.1:A and 127.0.0.1:B share cookies, as in every browser); Domain, Path, Max-Age (over
 * Expires), deletion by a past expiry. Like Chromium it treats http://localhost, *.localhost,
 * 127.0.0.1 and [::1] as secure contexts: Secure (and __Secure-/__Host-) cookies are set and sent
 * there over plain HTTP, and refused from any other http:// origin. SameSite: every request is a
 * top-level navigation; Strict cookies are withheld when any URL of the redirect chain (or the
 * page that submitted the form) is cross-site, Lax (and unspecified) ones then only on GET. A site
 * here is scheme + host name (no public-suffix list: enough for loopback hosts).
 */

// ---------------------------------------------------------------------------------------------
// Cookie jar

export interface StoredCookie {
  name: string;
  value: string;
  /** Host name (host-only) or the Domain attribute, lowercase, without a leading dot. */
  domain: string;
  hostOnly: boolean;
  path: string;
  /** Epoch ms, or null for a session cookie. */
  expires: number | null;
  secure: boolean;
  httpOnly: boolean;
  sameSite: 'strict' | 'lax' | 'none' | 'unspecified';
  created: number;
}

/** Hosts Chromium treats as potentially trustworthy over http:// (secure contexts). */
export function isLoopbackTrustworthy(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h === '[::1]' || /^127(\.\d{1,3}){3}$/.test(h);
}

function secureContext(url: URL): boolean {
  return url.protocol === 'https:' || isLoopbackTrustworthy(url.hostname);
}

function defaultPath(url: URL): string {
  const p = url.pathname;
  if (!p.startsWith('/') || p.lastIndexOf('/') === 0) return '/';
  return p.slice(0, p.lastIndexOf('/'));
}

function pathMatch(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}

function domainMatch(host: string, domain: string): boolean {
  return host === domain || (host.endsWith(`.${domain}`) && !/^[\d.]+$/.test(host) && !host.startsWith('['));
}

export function siteOf(url: URL): string {
  return `${url.protocol}//${url.hostname.toLowerCase()}`;
}

export class CookieJar {
  private cookies: StoredCookie[] = [];
  /** Why the last rejected Set-Cookie headers were refused (newest last), for test diagnostics. */
  readonly rejected: Array<{ url: string; header: string; reason: string }> = [];

  constructor(private readonly now: () => number = Date.now) {}

  /** Applies one Set-Cookie header received from `url`; false when it was refused (see `rejected`). */
  setCookie(header: string, url: URL): boolean {
    const parts = header.split(';');
    const pair = parts[0]!;
    const eq = pair.indexOf('=');
    if (eq < 0) return this.reject(url, header, 'no name=value');
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    if (!name) return this.reject(url, header, 'empty name');
    const host = url.hostname.toLowerCase();
    let expires: number | null = null;
    let maxAge: number | null = null;
    let domain: string | null = null;
    let path: string | null = null;
    let secure = false;
    let httpOnly = false;
    let sameSite: StoredCookie['sameSite'] = 'unspecified';
    for (const raw of parts.slice(1)) {
      const i = raw.indexOf('=');
      const key = (i < 0 ? raw : raw.slice(0, i)).trim().toLowerCase();
      const val = i < 0 ? '' : raw.slice(i + 1).trim();
      if (key === 'expires') {
        const t = Date.parse(val);
        if (!Number.isNaN(t)) expires = t;
      } else if (key === 'max-age') {
        if (/^-?\d+$/.test(val)) maxAge = Number(val);
      } else if (key === 'domain') domain = val.replace(/^\./, '').toLowerCase() || null;
      else if (key === 'path') path = val.startsWith('/') ? val : null;
      else if (key === 'secure') secure = true;
      else if (key === 'httponly') httpOnly = true;
      else if (key === 'samesite') {
        const v = val.toLowerCase();
        sameSite = v === 'strict' || v === 'lax' || v === 'none' ? v : 'unspecified';
      }
    }
    if (secure && !secureContext(url)) return this.reject(url, header, 'Secure cookie from an insecure origin');
    if (sameSite === 'none' && !secure) return this.reject(url, header, 'SameSite=None without Secure');
    if (name.startsWith('__Secure-') && !secure) return this.reject(url, header, '__Secure- prefix without Secure');
    if (name.startsWith('__Host-') && (!secure || domain !== null || path !== '/'))
      return this.reject(url, header, '__Host- prefix needs Secure, Path=/ and no Domain');
    if (domain !== null && !domainMatch(host, domain)) return this.reject(url, header, `Domain=${domain} does not match ${host}`);
    const now = this.now();
    const expiry = maxAge !== null ? (maxAge <= 0 ? 0 : now + maxAge * 1000) : expires;
    const cookie: StoredCookie = {
      name,
      value,
      domain: domain ?? host,
      hostOnly: domain === null,
      path: path ?? defaultPath(url),
      expires: expiry,
      secure,
      httpOnly,
      sameSite,
      created: now,
    };
    const same = (c: StoredCookie) => c.name === cookie.name && c.domain === cookie.domain && c.path === cookie.path;
    const old = this.cookies.find(same);
    if (old) {
      // An insecure origin cannot overwrite a Secure cookie (RFC 6265bis "leave secure cookies alone").
      if (old.secure && !secureContext(url)) return this.reject(url, header, 'would overwrite a Secure cookie');
      cookie.created = old.created;
    }
    this.cookies = this.cookies.filter((c) => !same(c));
    if (expiry !== null && expiry <= now) return true; // a deletion
    this.cookies.push(cookie);
    return true;
  }

  private reject(url: URL, header: string, reason: string): false {
    this.rejected.push({ url: url.href, header, reason });
    return false;
  }

  /**
   * The cookies a browser would send to `url` for a top-level navigation with `method`;
   * `crossSite` when the chain that led here crossed sites.
   */
  cookiesFor(url: URL, opts: { method?: string; crossSite?: boolean } = {}): StoredCookie[] {
    const now = this.now();
    this.cookies = this.cookies.filter((c) => c.expires === null || c.expires > now);
    const host = url.hostname.toLowerCase();
    const get = (opts.method ?? 'GET').toUpperCase() === 'GET' || (opts.method ?? '').toUpperCase() === 'HEAD';
    return this.cookies
      .filter((c) => (c.hostOnly ? host === c.domain : domainMatch(host, c.domain)))
      .filter((c) => pathMatch(url.pathname || '/', c.path))
      .filter((c) => !c.secure || secureContext(url))
      .filter((c) => {
        if (!opts.crossSite || c.sameSite === 'none') return true;
        if (c.sameSite === 'strict') return false;
        return get;
      })
      .sort((a, b) => b.path.length - a.path.length || a.created - b.created);
  }

  /** The Cookie header for `url` ('' when none). */
  header(url: URL, opts: { method?: string; crossSite?: boolean } = {}): string {
    return this.cookiesFor(url, opts)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  /** Every live cookie (copies). */
  all(): StoredCookie[] {
    const now = this.now();
    return this.cookies.filter((c) => c.expires === null || c.expires > now).map((c) => ({ ...c }));
  }

  /** The live cookie of that name for that host name, if any (any path). */
  get(hostname: string, name: string): StoredCookie | undefined {
    return this.all().find((c) => c.name === name && domainMatch(hostname.toLowerCase(), c.domain));
  }

  clear(): void {
    this.cookies = [];
  }
}

// ---------------------------------------------------------------------------------------------
// HTML forms

export interface HtmlForm {
  id: string | undefined;
  /** Absolute URL the form submits to. */
  action: string;
  method: 'GET' | 'POST';
  /** Successful controls in document order (hidden, text, password, checked boxes; not buttons). */
  fields: Array<[string, string]>;
  /** Named submit buttons/inputs, which add their name=value only when they are the one pressed. */
  submitters: Array<{ name: string; value: string; label: string }>;
  /** Input names of type password (a login form has one). */
  passwordFields: string[];
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

export function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
    if (e[0] === '#') return String.fromCodePoint(e[1]?.toLowerCase() === 'x' ? Number.parseInt(e.slice(2), 16) : Number(e.slice(1)));
    return ENTITIES[e.toLowerCase()] ?? m;
  });
}

function attributes(tag: string): Map<string, string> {
  const out = new Map<string, string>();
  const re = /([^\s=/>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g;
  for (const m of tag.matchAll(re)) out.set(m[1]!.toLowerCase(), decodeEntities(m[2] ?? m[3] ?? m[4] ?? ''));
  return out;
}

interface Control {
  tag: 'input' | 'button' | 'select' | 'textarea';
  attrs: Map<string, string>;
  inner: string;
  index: number;
}

function controls(html: string): Control[] {
  const out: Control[] = [];
  // An <input> has no end tag; the others enclose their label, options or text.
  for (const m of html.matchAll(/<input\b([^>]*)>/gi)) out.push({ tag: 'input', attrs: attributes(m[1] ?? ''), inner: '', index: m.index ?? 0 });
  for (const m of html.matchAll(/<(button|select|textarea)\b([^>]*)>([\s\S]*?)<\/\1\s*>/gi)) {
    out.push({ tag: m[1]!.toLowerCase() as Control['tag'], attrs: attributes(m[2] ?? ''), inner: m[3] ?? '', index: m.index ?? 0 });
  }
  return out.sort((a, b) => a.index - b.index);
}

/** Reads every <form> of a page, including controls outside it that name it with form="id". */
export function parseForms(html: string, pageUrl: string): HtmlForm[] {
  const all = controls(html);
  const forms: HtmlForm[] = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form\s*>/gi)) {
    const attrs = attributes(m[1] ?? '');
    const start = m.index ?? 0;
    const end = start + m[0].length;
    const id = attrs.get('id');
    const own = all.filter((c) => {
      const owner = c.attrs.get('form');
      if (owner !== undefined) return owner === id;
      return c.index > start && c.index < end;
    });
    const form: HtmlForm = {
      id,
      action: new URL(attrs.get('action') || pageUrl, pageUrl).href,
      method: (attrs.get('method') ?? 'get').toUpperCase() === 'POST' ? 'POST' : 'GET',
      fields: [],
      submitters: [],
      passwordFields: [],
    };
    for (const c of own) {
      const name = c.attrs.get('name');
      const type = (c.attrs.get('type') ?? (c.tag === 'button' ? 'submit' : 'text')).toLowerCase();
      if (c.attrs.has('disabled')) continue;
      if ((c.tag === 'button' && type === 'submit') || (c.tag === 'input' && (type === 'submit' || type === 'image'))) {
        if (name) form.submitters.push({ name, value: c.attrs.get('value') ?? '', label: c.inner.replace(/<[^>]*>/g, '').trim() });
        continue;
      }
      if (!name || c.tag === 'button' || type === 'reset' || type === 'file') continue;
      if (type === 'password') form.passwordFields.push(name);
      if ((type === 'checkbox' || type === 'radio') && !c.attrs.has('checked')) continue;
      if (c.tag === 'select') {
        const opt = /<option\b([^>]*\bselected\b[^>]*)>([\s\S]*?)<\/option>/i.exec(c.inner) ?? /<option\b([^>]*)>([\s\S]*?)<\/option>/i.exec(c.inner);
        if (opt) form.fields.push([name, attributes(opt[1] ?? '').get('value') ?? decodeEntities(opt[2]!.trim())]);
        continue;
      }
      form.fields.push([
        name,
        c.tag === 'textarea' ? decodeEntities(c.inner) : (c.attrs.get('value') ?? (type === 'checkbox' || type === 'radio' ? 'on' : '')),
      ]);
    }
    forms.push(form);
  }
  return forms;
}

// ---------------------------------------------------------------------------------------------
// The agent

export interface Hop {
  url: string;
  method: string;
  status: number;
  headers: Headers;
  /** Absolute Location, when the answer has one. */
  location: string | undefined;
  setCookies: string[];
  /** The Cookie header sent. */
  sentCookie: string;
  body: string;
}

export interface FlowResult {
  hops: Hop[];
  /** The last answer received (undefined only when the first URL matched stopAt). */
  last: Hop | undefined;
  /** The URL the flow reached but did not request because it matched stopAt. */
  stoppedAt: string | undefined;
}

export type StopAt = string | RegExp | ((url: URL) => boolean);

export interface RequestOptions {
  method?: string;
  /** An urlencoded body (POST). */
  form?: Record<string, string> | Array<[string, string]>;
  headers?: Record<string, string>;
  /** The page (or previous hop) that led here; decides SameSite. None: typed into the address bar. */
  initiator?: string;
}

export interface FollowOptions extends RequestOptions {
  /** Default 20. */
  maxHops?: number;
  /** A URL prefix, pattern or predicate: the flow stops before requesting a matching URL. */
  stopAt?: StopAt;
}

export interface LoginResult extends FlowResult {
  /** True when the provider's login form was found and submitted (false after a single sign-on). */
  loginSubmitted: boolean;
  /** Other provider pages submitted on the way (consent). */
  pagesSubmitted: string[];
}

function matches(stop: StopAt | undefined, url: URL): boolean {
  if (stop === undefined) return false;
  if (typeof stop === 'string') return url.href.startsWith(stop);
  if (stop instanceof RegExp) return stop.test(url.href);
  return stop(url);
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export class UserAgent {
  readonly jar: CookieJar;
  /** Every hop this agent made, oldest first. */
  readonly history: Hop[] = [];

  constructor(opts: { jar?: CookieJar; userAgent?: string } = {}) {
    this.jar = opts.jar ?? new CookieJar();
    this.userAgent = opts.userAgent ?? 'sessiongate-test-agent/1';
  }
  private readonly userAgent: string;

  /** One request, no redirect followed. Cookies are sent from and stored into the jar. */
  async request(url: string, opts: RequestOptions & { chain?: string[] } = {}): Promise<Hop> {
    const u = new URL(url);
    const method = (opts.method ?? (opts.form ? 'POST' : 'GET')).toUpperCase();
    const chain = [...(opts.chain ?? []), ...(opts.initiator ? [opts.initiator] : [])];
    const crossSite = chain.some((c) => siteOf(new URL(c)) !== siteOf(u));
    const sentCookie = this.jar.header(u, { method, crossSite });
    const headers = new Headers({ 'User-Agent': this.userAgent, Accept: 'text/html,application/json;q=0.9,*/*;q=0.8', ...opts.headers });
    if (sentCookie) headers.set('Cookie', sentCookie);
    let body: string | undefined;
    if (opts.form) {
      body = new URLSearchParams(opts.form).toString();
      headers.set('Content-Type', 'application/x-www-form-urlencoded');
    }
    if (opts.initiator && method === 'POST') headers.set('Origin', new URL(opts.initiator).origin);
    const res = await fetch(u, { method, headers, body, redirect: 'manual' });
    const setCookies = res.headers.getSetCookie();
    for (const sc of setCookies) this.jar.setCookie(sc, u);
    const loc = res.headers.get('location');
    const hop: Hop = {
      url: u.href,
      method,
      status: res.status,
      headers: res.headers,
      location: loc === null ? undefined : new URL(loc, u).href,
      setCookies,
      sentCookie,
      body: await res.text(),
    };
    this.history.push(hop);
    return hop;
  }

  get(url: string, opts: Omit<RequestOptions, 'method' | 'form'> = {}): Promise<Hop> {
    return this.request(url, opts);
  }

  /** Requests `url` and follows redirects (303, and 301/302 after POST, become GET) like a browser's address bar. */
  async follow(url: string, opts: FollowOptions = {}): Promise<FlowResult> {
    const maxHops = opts.maxHops ?? 20;
    const hops: Hop[] = [];
    const chain: string[] = opts.initiator ? [opts.initiator] : [];
    let next: { url: string; method: string; form: RequestOptions['form'] } = { url, method: opts.method ?? (opts.form ? 'POST' : 'GET'), form: opts.form };
    for (;;) {
      if (matches(opts.stopAt, new URL(next.url))) return { hops, last: hops.at(-1), stoppedAt: next.url };
      if (hops.length >= maxHops) throw new Error(`more than ${maxHops} hops from ${url}:\n${hops.map((h) => `${h.status} ${h.method} ${h.url}`).join('\n')}`);
      const hop = await this.request(next.url, { method: next.method, form: next.form, headers: opts.headers, chain });
      hops.push(hop);
      if (!REDIRECTS.has(hop.status) || !hop.location) return { hops, last: hop, stoppedAt: undefined };
      chain.push(hop.url);
      const keep = hop.status === 307 || hop.status === 308;
      const toGet = !keep && (hop.status === 303 || next.method === 'POST');
      next = { url: hop.location, method: toGet ? 'GET' : next.method, form: toGet ? undefined : next.form };
    }
  }

  /**
   * Submits a form of `page` (the first one `pick` accepts, default the first form) with `values`
   * over its fields, pressing the submitter named `submitter` (name or name=value) when given,
   * then follows redirects.
   */
  async submit(
    page: Hop,
    opts: { pick?: (f: HtmlForm) => boolean; values?: Record<string, string>; submitter?: string; stopAt?: StopAt; maxHops?: number } = {},
  ): Promise<FlowResult> {
    const forms = parseForms(page.body, page.url);
    const form = forms.find(opts.pick ?? (() => true));
    if (!form) throw new Error(`no matching form at ${page.url} (status ${page.status}):\n${page.body.slice(0, 2000)}`);
    const fields: Array<[string, string]> = form.fields.map(([k, v]) => [k, opts.values && k in opts.values ? opts.values[k]! : v]);
    for (const [k, v] of Object.entries(opts.values ?? {})) if (!fields.some(([n]) => n === k)) fields.push([k, v]);
    if (opts.submitter) {
      const [name, value] = opts.submitter.split('=');
      const s = form.submitters.find((b) => b.name === name && (value === undefined || b.value === value));
      if (!s) throw new Error(`no submit button ${opts.submitter} in the form at ${page.url}: ${JSON.stringify(form.submitters)}`);
      fields.push([s.name, s.value]);
    }
    const follow: FollowOptions = { initiator: page.url, stopAt: opts.stopAt, maxHops: opts.maxHops };
    if (form.method === 'GET') {
      const target = new URL(form.action);
      target.search = new URLSearchParams(fields).toString();
      return this.follow(target.href, follow);
    }
    return this.follow(form.action, { ...follow, method: 'POST', form: fields });
  }

  /**
   * From `startUrl` (an application page, sessiongate's /~login, or the provider's authorization
   * URL) to the provider's login form, submits `login`/`password` (and a consent page if one
   * shows), and follows back until an answer that is not a redirect or a URL matching `stopAt`.
   * When the provider still has a session (single sign-on) no form shows: loginSubmitted false.
   */
  async completeLogin(startUrl: string, login: string, password: string, opts: { stopAt?: StopAt; maxHops?: number } = {}): Promise<LoginResult> {
    let flow = await this.follow(startUrl, opts);
    const hops = [...flow.hops];
    let loginSubmitted = false;
    const pagesSubmitted: string[] = [];
    for (let page = 0; page < 4 && !flow.stoppedAt && flow.last && flow.last.status === 200; page++) {
      const forms = parseForms(flow.last.body, flow.last.url);
      const loginForm = forms.find((f) => f.passwordFields.length > 0);
      const consent = forms.find((f) => f.fields.some(([k, v]) => k === 'prompt' && v === 'consent'));
      if (loginForm && !loginSubmitted) {
        const user = loginForm.fields.find(([k, v]) => k !== 'prompt' && !loginForm.passwordFields.includes(k) && (k === 'login' || v === ''))?.[0] ?? 'login';
        flow = await this.submit(flow.last, {
          pick: (f) => f === loginForm || (f.action === loginForm.action && f.passwordFields.length > 0),
          values: { [user]: login, [loginForm.passwordFields[0]!]: password },
          ...opts,
        });
        loginSubmitted = true;
      } else if (consent) {
        pagesSubmitted.push(flow.last.url);
        flow = await this.submit(flow.last, { pick: (f) => f.fields.some(([k, v]) => k === 'prompt' && v === 'consent'), ...opts });
      } else break;
      hops.push(...flow.hops);
    }
    return { hops, last: flow.last, stoppedAt: flow.stoppedAt, loginSubmitted, pagesSubmitted };
  }

  /**
   * Logs out at the provider: follows `startUrl` (sessiongate's /~logout, or the provider's
   * end_session URL) to the provider's logout page, answers it (everywhere: "Yes, sign me out",
   * which ends the provider session and sends back-channel logout to every client; otherwise
   * "No, stay signed in", which only ends the calling client's part), and follows to the
   * post_logout_redirect_uri (or the provider's success page), stopping before `stopAt`.
   * When the provider has no session it answers an auto-submitting form; it is submitted too.
   */
  async logoutAtProvider(
    startUrl: string,
    opts: { everywhere?: boolean; stopAt?: StopAt; maxHops?: number } = {},
  ): Promise<FlowResult & { confirmPage: Hop | undefined }> {
    const flow = await this.follow(startUrl, opts);
    const page = flow.last;
    if (flow.stoppedAt || !page || page.status !== 200) return { ...flow, confirmPage: undefined };
    const forms = parseForms(page.body, page.url);
    const form = forms.find((f) => f.fields.some(([k]) => k === 'xsrf'));
    if (!form) return { ...flow, confirmPage: undefined };
    const yes = form.submitters.find((s) => s.name === 'logout');
    const everywhere = opts.everywhere ?? true;
    const done = await this.submit(page, {
      pick: (f) => f === form || f.action === form.action,
      ...(everywhere && yes ? { submitter: `${yes.name}=${yes.value}` } : {}),
      stopAt: opts.stopAt,
      maxHops: opts.maxHops,
    });
    return { hops: [...flow.hops, ...done.hops], last: done.last, stoppedAt: done.stoppedAt, confirmPage: page };
  }
}
