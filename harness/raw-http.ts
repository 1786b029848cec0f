/**
 * An HTTP/1.1 client that sends exactly the bytes it is given: header names with spaces, NUL,
 * CR and LF in values, non-ASCII bytes, repeated headers. What a hostile client sends, which
 * Node's own client refuses to. One request per connection; the answer is parsed loosely.
 */
import { connect } from 'node:net';

export interface RawReply {
  status: number;
  /** Header names in lower case; repeated headers keep every value. */
  headers: Record<string, string[]>;
  body: string;
}

/** `headers` values and names go on the wire as latin1 bytes, unchecked. */
export function rawRequest(port: number, req: { method?: string; target: string; headers: Array<[string, string]>; body?: string }): Promise<RawReply> {
  const lines = [`${req.method ?? 'GET'} ${req.target} HTTP/1.1`];
  if (!req.headers.some(([k]) => k.toLowerCase() === 'host')) lines.push('Host: app.example.com');
  for (const [k, v] of req.headers) lines.push(`${k}: ${v}`);
  if (req.body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(req.body)}`);
  lines.push('Connection: close', '', req.body ?? '');
  const bytes = Buffer.from(lines.join('\r\n'), 'latin1');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    // write, not end: nginx takes a half-closed connection for a client that gave up (499).
    const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
    socket.setTimeout(10_000, () => socket.destroy(new Error('raw request timed out')));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const head = (end >= 0 ? text.slice(0, end) : text).split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '')?.[1] ?? 0);
      const headers: Record<string, string[]> = {};
      for (const line of head.slice(1)) {
        const i = line.indexOf(':');
        if (i <= 0) continue;
        const k = line.slice(0, i).trim().toLowerCase();
        (headers[k] ??= []).push(line.slice(i + 1).trim());
      }
      resolve({ status, headers, body: end >= 0 ? text.slice(end + 4) : '' });
    });
  });
}
