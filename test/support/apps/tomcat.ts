/**
 * Tomcat 10 from Debian's packages (tomcat10), as a test server: its own CATALINA_BASE in a
 * temporary folder (one HTTP connector on a free loopback port, no shutdown port), and a ROOT
 * webapp whose static file `/admin/secret` holds the secret, served by Tomcat's DefaultServlet.
 * Tomcat reads `;params` the servlet way: `/~assets/..;/admin/secret` is `/admin/secret` to it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, tempDir, waitFor } from '../../../harness/processes.js';
import type { RunningApp } from './readings.js';

export const CATALINA_HOME = '/usr/share/tomcat10';

export function tomcatInstalled(): boolean {
  return existsSync(join(CATALINA_HOME, 'bin/bootstrap.jar'));
}

function serverXml(port: number): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<Server port="-1" shutdown="SHUTDOWN">
  <Service name="Catalina">
    <Connector port="${port}" address="127.0.0.1" protocol="HTTP/1.1" connectionTimeout="20000" />
    <Engine name="Catalina" defaultHost="localhost">
      <Host name="localhost" appBase="webapps" unpackWARs="false" autoDeploy="false" deployOnStartup="true" />
    </Engine>
  </Service>
</Server>
`;
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
}

async function get(port: number, path: string): Promise<string | null> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}${path}`);
    return r.status === 200 ? await r.text() : null;
  } catch {
    return null;
  }
}

export async function startTomcat(secret: string): Promise<RunningApp> {
  if (!tomcatInstalled())
    throw new Error(`Tomcat is not installed at ${CATALINA_HOME}: run the README test command (it installs tomcat10) or apt-get install tomcat10`);
  const base = tempDir('sg-tomcat-');
  for (const d of ['conf', 'logs', 'temp', 'work', 'webapps/ROOT/admin']) mkdirSync(join(base, d), { recursive: true });
  // The default web.xml declares the DefaultServlet (static files) and the MIME types.
  copyFileSync('/etc/tomcat10/web.xml', join(base, 'conf/web.xml'));
  writeFileSync(join(base, 'conf/logging.properties'), 'handlers = java.util.logging.ConsoleHandler\n.level = WARNING\n');
  writeFileSync(join(base, 'webapps/ROOT/admin/secret'), secret);
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    writeFileSync(join(base, 'conf/server.xml'), serverXml(port));
    const child = spawn(
      'java',
      [
        `-Djava.util.logging.config.file=${join(base, 'conf/logging.properties')}`,
        '-Djava.util.logging.manager=org.apache.juli.ClassLoaderLogManager',
        `-Dcatalina.home=${CATALINA_HOME}`,
        `-Dcatalina.base=${base}`,
        `-Djava.io.tmpdir=${join(base, 'temp')}`,
        '-Xms32m',
        '-Xmx128m',
        '-cp',
        `${CATALINA_HOME}/bin/bootstrap.jar:${CATALINA_HOME}/bin/tomcat-juli.jar`,
        'org.apache.catalina.startup.Bootstrap',
        'start',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    // Up when the webapp serves the secret, not merely when the port is open.
    const up = await waitFor(
      async () => (await get(port, '/admin/secret')) === secret,
      60_000,
      () => child.exitCode !== null,
    );
    if (up) {
      return {
        name: 'tomcat 10',
        port,
        stop: async () => {
          const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
          child.kill('SIGTERM');
          await exited(child);
          clearTimeout(kill);
          rmSync(base, { recursive: true, force: true });
        },
      };
    }
    child.kill('SIGKILL');
    await exited(child);
    if (attempt >= 2) {
      rmSync(base, { recursive: true, force: true });
      throw new Error(`Tomcat did not start: ${stderr.slice(-4000)}`);
    }
  }
}
