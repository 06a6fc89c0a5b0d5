import { describe, expect, it } from 'vitest';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { commandLinePasswords, parseKeyValue, parseUri, passwordFromFile, resolveSettings } from '../../src/pg/conninfo.js';
import { childEnv, connFromEnv, connFromUrl, pgAttempts } from '../../src/pg/conn.js';
import { keyProblem } from '../../src/model/keys.js';
import { localFileRef } from '../../src/ops/open.js';
import { tempDir } from '../support/tmp.js';

const tmp = () => tempDir('pgbackup-conninfo-');

describe('key=value connection strings', () => {
  it('reads libpq quoting: single quotes, backslash escapes, spaces around =', () => {
    const s = parseKeyValue(`host=db dbname = 'my db'  password='it\\'s \\\\ ok' user=a\\ b sslmode=require options='-c work_mem=1MB'`);
    expect(Object.fromEntries(s)).toEqual({ host: 'db', dbname: 'my db', password: "it's \\ ok", user: 'a b', sslmode: 'require', options: '-c work_mem=1MB' });
    expect(parseKeyValue("host=''").get('host')).toBe('');
  });
  it('refuses bad strings without echoing them', () => {
    expect(() => parseKeyValue('host=db frob=1')).toThrow(/setting #2 .* not a libpq connection option$/);
    expect(() => parseKeyValue('host=db ssl_mode=1')).toThrow(/"ssl_mode"/);
    expect(() => parseKeyValue('password=hunter two')).not.toThrow(/two|hunter/);
    expect(() => parseKeyValue('postgres//nope:hunter2@')).not.toThrow(/hunter2/);
    expect(() => parseKeyValue("password='s3cret")).toThrow(/unterminated/);
    expect(() => parseKeyValue("password='s3cret")).not.toThrow(/s3cret/);
    expect(() => parseKeyValue('hostdb')).toThrow(/no "="/);
    expect(() => connFromUrl('mysql://u:s3cret@h/db')).toThrow(/not a postgres/);
  });
});

describe('URLs', () => {
  it('reads user, password, hosts, ports, database and parameters, percent-decoded', () => {
    const s = parseUri('postgresql://us%40er:p%40ss%3Aw@[::1]:6543/my%20db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x');
    expect(Object.fromEntries(s)).toEqual({ user: 'us@er', password: 'p@ss:w', host: '::1', port: '6543', dbname: 'my db', sslmode: 'verify-full', sslrootcert: '/etc/ca.pem', application_name: 'x' });
    expect(Object.fromEntries(parseUri('postgres://%2Fvar%2Frun%2Fpostgresql/app'))).toEqual({ host: '/var/run/postgresql', dbname: 'app' });
    expect(parseUri('postgres://h/db?ssl=true').get('sslmode')).toBe('require');
    expect(parseUri('postgres://h/db?host=other').get('host')).toBe('other');
    expect(() => parseUri('postgres://h/db?frob=1')).toThrow(/frob/);
  });
});

describe('precedence: explicit > service file > environment > defaults', () => {
  it('merges the PG* environment under the URL (the URL wins for the same setting)', () => {
    const env = { PGSSLMODE: 'verify-full', PGSSLROOTCERT: '/env/ca.pem', PGOPTIONS: '-c work_mem=7MB', PGAPPNAME: 'envapp', PGHOST: 'envhost', PGPORT: '7777', PGUSER: 'envuser' };
    const ci = connFromUrl('postgres://u@h:5432/db?sslrootcert=/url/ca.pem', '--database', env);
    expect(ci).toMatchObject({ host: 'h', port: 5432, user: 'u', database: 'db' });
    expect(ci.extra).toMatchObject({ PGSSLMODE: 'verify-full', PGSSLROOTCERT: '/url/ca.pem', PGOPTIONS: '-c work_mem=7MB', PGAPPNAME: 'envapp' });
    const child = childEnv(ci, { PATH: '/bin', ...env });
    expect(child).toMatchObject({ PGHOST: 'h', PGPORT: '5432', PGUSER: 'u', PGDATABASE: 'db', PGSSLMODE: 'verify-full', PGSSLROOTCERT: '/url/ca.pem', PGOPTIONS: '-c work_mem=7MB', PGAPPNAME: 'envapp' });
    // Without a URL, the environment alone.
    expect(connFromEnv(env)).toMatchObject({ host: 'envhost', port: 7777, user: 'envuser' });
  });
  it('takes the service file between the string and the environment, and never passes the service on', () => {
    const d = tmp();
    const f = join(d, 'services.conf');
    writeFileSync(f, '# comment\n[other]\nhost=nothere\n[prod]\nhost=svc-host\nport=6000\nsslmode=verify-ca\ndbname=svcdb\n');
    const env = { PGSERVICEFILE: f, PGSSLMODE: 'disable', PGPORT: '1234', PGAPPNAME: 'a' };
    const ci = connFromUrl('service=prod dbname=mine', '--database', env);
    expect(ci).toMatchObject({ host: 'svc-host', port: 6000, database: 'mine' });
    expect(ci.extra.PGSSLMODE).toBe('verify-ca');
    expect(ci.extra.PGAPPNAME).toBe('a');
    const child = childEnv(ci, { PGSERVICE: 'prod', PGSERVICEFILE: f });
    expect(child.PGSERVICE).toBeUndefined();
    expect(child.PGSERVICEFILE).toBeUndefined();
    expect(connFromEnv({ PGSERVICE: 'prod', PGSERVICEFILE: f })).toMatchObject({ host: 'svc-host', port: 6000 });
    expect(() => connFromEnv({ PGSERVICE: 'nope', PGSERVICEFILE: f, PGSYSCONFDIR: d })).toThrow(/service "nope" not found/);
  });
  it('refuses what node-postgres or the children cannot honour, naming it', () => {
    expect(() => resolveSettings(new Map([['gssencmode', 'require']]), {})).toThrow(/gssencmode=require/);
    expect(() => resolveSettings(new Map([['host', 'a,b']]), {})).toThrow(/several hosts/);
    expect(() => resolveSettings(new Map([['sslpassword', 'x']]), {})).toThrow(/sslpassword/);
    expect(() => resolveSettings(new Map([['sslmode', 'strict']]), {})).toThrow(/invalid sslmode/);
    expect(() => resolveSettings(new Map([['sslrootcert', 'system'], ['sslmode', 'require']]), {})).toThrow(/verify-full/);
    expect(resolveSettings(new Map([['sslrootcert', 'system']]), {}).get('sslmode')).toBe('verify-full');
    expect(resolveSettings(new Map(), { PGREQUIRESSL: '1' }).get('sslmode')).toBe('require');
  });
});

describe('node-postgres attempts follow sslmode', () => {
  const home = tmp();
  const env = { HOME: home };
  const modes = (ci: ReturnType<typeof connFromUrl>) => pgAttempts(ci, env).map((a) => a.label);
  it('orders TLS and plain as libpq does', () => {
    expect(modes(connFromUrl('postgres://u@h/db', 'x', env))).toEqual(['TLS', 'without TLS']); // prefer
    expect(modes(connFromUrl('postgres://u@h/db?sslmode=allow', 'x', env))).toEqual(['without TLS', 'TLS']);
    expect(modes(connFromUrl('postgres://u@h/db?sslmode=require', 'x', env))).toEqual(['TLS']);
    expect(modes(connFromUrl('postgres://u@h/db?sslmode=disable', 'x', env))).toEqual(['without TLS']);
    expect(modes(connFromUrl('host=/tmp dbname=db sslmode=require', 'x', env))).toEqual(['without TLS']);
  });
  it('verifies only when asked, or (require) when a root certificate exists', () => {
    const ca = join(home, 'ca.pem');
    writeFileSync(ca, 'not really a cert');
    const req = pgAttempts(connFromUrl('postgres://u@h/db?sslmode=require', 'x', env), env)[0]!.config.ssl as Record<string, unknown>;
    expect(req.rejectUnauthorized).toBe(false);
    const req2 = pgAttempts(connFromUrl(`postgres://u@h/db?sslmode=require&sslrootcert=${ca}`, 'x', env), env)[0]!.config.ssl as Record<string, unknown>;
    expect(req2.rejectUnauthorized).toBe(true);
    expect(String(req2.ca)).toBe('not really a cert');
    expect(() => pgAttempts(connFromUrl('postgres://u@h/db?sslmode=verify-ca', 'x', env), env)).toThrow(/root certificate file .* does not exist/);
    const sys = pgAttempts(connFromUrl('postgres://u@h/db?sslrootcert=system', 'x', env), env)[0]!.config.ssl as Record<string, unknown>;
    expect(sys.rejectUnauthorized).toBe(true);
    expect(sys.ca).toBeUndefined();
  });
  it('passes application_name and options, pgbackup by default', () => {
    const c = pgAttempts(connFromUrl('postgres://u@h/db', 'x', { ...env, PGOPTIONS: '-c work_mem=7MB' }), env)[0]!.config;
    expect(c.application_name).toBe('pgbackup');
    expect(c.options).toBe('-c work_mem=7MB');
    expect(pgAttempts(connFromUrl('postgres://u@h/db?application_name=mine', 'x', env), env)[0]!.config.application_name).toBe('mine');
  });
});

describe('password file', () => {
  it('matches host:port:db:user with wildcards and escapes; ignores a file others can read', () => {
    const f = join(tmp(), 'pgpass');
    writeFileSync(f, '# c\nother:*:*:*:no\ndb\\:x:5432:app:u:first\\:pw\n*:*:*:u:fallback\n');
    chmodSync(f, 0o600);
    expect(passwordFromFile({ passfile: f, host: 'db:x', port: 5432, database: 'app', user: 'u' }, {})).toBe('first:pw');
    expect(passwordFromFile({ passfile: f, host: 'h', port: 1, database: 'z', user: 'u' }, {})).toBe('fallback');
    expect(passwordFromFile({ passfile: f, host: 'h', database: 'z', user: 'v' }, {})).toBeUndefined();
    chmodSync(f, 0o644);
    const warnings: string[] = [];
    expect(passwordFromFile({ passfile: f, host: 'h', database: 'z', user: 'u' }, {}, (m) => warnings.push(m))).toBeUndefined();
    expect(warnings.join()).toMatch(/group or world access/);
  });
});

describe('command-line passwords', () => {
  it('finds and masks them in URLs and key=value strings', () => {
    const r = commandLinePasswords(['backup', '--database', 'postgres://u:s3cret@h/db', '--to=host=h password=s3cret dbname=x', '--restore-into', 'postgres://u@h/db']);
    expect(r.flags).toEqual(['--database', '--to']);
    expect(r.masked.join(' ')).not.toContain('s3cret');
    expect(r.masked[2]).toBe('postgres://u:***@h/db');
    expect(commandLinePasswords(['list', '--database', 'app']).flags).toEqual([]);
  });
});

describe('keys and local files', () => {
  it('refuses keys with .., empty segments, absolute paths or backslashes', () => {
    for (const k of ['../x', 'a/../b', 'a//b', '/etc/shadow', 'a\\b', './a', '', 'a/']) expect(keyProblem(k), k).not.toBeNull();
    expect(keyProblem('app/2025/11/08/app_20251108T021700Z.sql.gz.age')).toBeNull();
  });
  it('reads a local file only in the file form', () => {
    expect(localFileRef('/tmp/x.sql.gz.age')).toBe('/tmp/x.sql.gz.age');
    expect(localFileRef('./x.sql')).toBe('./x.sql');
    expect(localFileRef('../x.sql.gz')).toBe('../x.sql.gz');
    expect(localFileRef('file:notes.txt')).toBe('notes.txt');
    expect(localFileRef('file:///tmp/a%20b.sql')).toBe('/tmp/a b.sql');
    expect(localFileRef('/etc/shadow')).toBeNull();
    expect(localFileRef('x.sql.gz.age')).toBeNull();
    expect(localFileRef('app/2025/x.sql.gz.age')).toBeNull();
  });
});
