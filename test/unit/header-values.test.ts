/**
 * The one rule for headers that come as a list (core/header-values.ts): a field that names one
 * thing is read from its first value; where any value may matter, every value is.
 */
import { describe, expect, it } from 'vitest';
import { createLoginTokenCheck } from '../../src/api/login-token.js';
import { bearerToken, readCredential } from '../../src/core/credential.js';
import { isBrowserNavigation } from '../../src/core/decide.js';
import { allValues, firstValue } from '../../src/core/header-values.js';
import { createUpstreamCredentials } from '../../src/core/upstream.js';
import { createTokenCodec } from '../../src/session/token.js';
import { request, SECRET } from '../support/fixtures.js';

const tokens = createTokenCodec([SECRET]);

describe('header values', () => {
  it('firstValue and allValues', () => {
    expect(firstValue(undefined)).toBeUndefined();
    expect(firstValue('a')).toBe('a');
    expect(firstValue(['a', 'b'])).toBe('a');
    expect(allValues(['a', 'b'], '; ')).toBe('a; b');
    expect(allValues('a', '; ')).toBe('a');
    expect(allValues(undefined, ', ')).toBeUndefined();
  });

  it('Authorization: the credential is the first value, but a token in any value is withheld from the upstream', () => {
    const { token } = tokens.issue();
    const headers = { authorization: ['Basic dXNlcjpwYXNz', `Bearer ${token}`] };
    expect(readCredential(headers, 'sessiongate', tokens)).toMatchObject({ kind: 'none', bearer: false });
    expect(createUpstreamCredentials('sessiongate', tokens).rewrite(headers)).toMatchObject({ dropAuthorization: true });
  });

  it('Accept: any value asking for HTML makes a browser navigation', () => {
    expect(isBrowserNavigation({ ...request(), headers: { accept: ['application/json', 'text/html'] } })).toBe(true);
  });

  it('one bearer parser: session tokens and the login token read the scheme in any case', () => {
    expect(bearerToken({ authorization: 'bEaReR  abc ' })).toBe('abc');
    expect(bearerToken({ authorization: 'Bearer ' })).toBeUndefined();
    expect(bearerToken({ authorization: 'Basic abc' })).toBeUndefined();
    const login = createLoginTokenCheck(() => Buffer.from('login-token-0123456789'));
    expect(login.ok({ authorization: 'bearer login-token-0123456789' })).toBe(true);
    expect(login.ok({ authorization: 'Bearer wrong' })).toBe(false);
    expect(login.ok({})).toBe(false);
  });
});
