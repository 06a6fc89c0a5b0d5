import { describe, it, expect } from 'vitest';
import { createClauses, propertyStatements, settingClause, splitGucList, tolerant, type DatabaseProperties } from '../../src/model/dbprops.js';

const base: DatabaseProperties = {
  encoding: 'UTF8', collate: 'C', ctype: 'C', localeProvider: 'libc', locale: null, icuRules: null, owner: 'postgres', acl: null, privileges: null,
  settings: [], comment: null, securityLabels: [], connectionLimit: -1, isTemplate: false, allowConnections: true, tablespace: null,
};

describe('settings', () => {
  it('splits list GUCs as PostgreSQL does and quotes each element', () => {
    expect(splitGucList('a, "b c", "x""y"')).toEqual(['a', 'b c', 'x"y']);
    expect(settingClause('search_path', '"$user", public')).toBe(`search_path TO '$user', 'public'`);
    expect(settingClause('work_mem', '7MB')).toBe(`work_mem TO '7MB'`);
    expect(settingClause('app.note', "it's \\ here")).toBe(`app.note TO E'it''s \\\\ here'`);
    expect(settingClause('Odd Name', 'x')).toBe(`"Odd Name" TO 'x'`);
  });
  it('tolerant statements warn instead of failing, with a tag the statement lacks', () => {
    expect(tolerant('SELECT 1', 'x')).toBe(`DO $pgbackup$ BEGIN SELECT 1; EXCEPTION WHEN OTHERS THEN RAISE WARNING '%', 'pgbackup: could not apply x: ' || SQLERRM; END $pgbackup$;`);
    expect(tolerant("SELECT '$pgbackup$'", 'x')).toContain('$pgbackup_$');
  });
});

describe('propertyStatements', () => {
  const roles = new Set(['postgres', 'app', 'reader', 'granter']);
  it('a fresh database gets owner, ACL, settings, comment, labels and connection limit', () => {
    const p: DatabaseProperties = {
      ...base,
      owner: 'app',
      privileges: [
        { grantee: null, grantor: 'app', privilege: 'TEMPORARY', grantable: false },
        { grantee: 'app', grantor: 'app', privilege: 'CREATE', grantable: false },
        { grantee: 'app', grantor: 'app', privilege: 'CONNECT', grantable: false },
        { grantee: 'app', grantor: 'app', privilege: 'TEMPORARY', grantable: false },
        { grantee: 'reader', grantor: 'granter', privilege: 'CONNECT', grantable: false },
        { grantee: 'ghost', grantor: 'app', privilege: 'CONNECT', grantable: false },
      ],
      settings: [{ role: null, name: 'work_mem', value: '7MB' }, { role: 'reader', name: 'search_path', value: 'a, b' }, { role: 'ghost', name: 'work_mem', value: '1MB' }],
      comment: 'c',
      securityLabels: [{ provider: 'selinux', label: 'x' }],
      connectionLimit: 5,
    };
    const r = propertyStatements(p, 'new db', { roles, current: base });
    expect(r.statements).toEqual([
      'ALTER DATABASE "new db" OWNER TO "app";',
      'REVOKE ALL ON DATABASE "new db" FROM PUBLIC CASCADE;',
      'REVOKE ALL ON DATABASE "new db" FROM "app" CASCADE;',
      'GRANT TEMPORARY ON DATABASE "new db" TO PUBLIC;',
      'GRANT CREATE, CONNECT, TEMPORARY ON DATABASE "new db" TO "app";',
      'SET SESSION AUTHORIZATION "granter";',
      'GRANT CONNECT ON DATABASE "new db" TO "reader";',
      'RESET SESSION AUTHORIZATION;',
      tolerant(`ALTER DATABASE "new db" SET work_mem TO '7MB'`, 'setting work_mem'),
      tolerant(`ALTER ROLE "reader" IN DATABASE "new db" SET search_path TO 'a', 'b'`, 'setting search_path for role reader'),
      `COMMENT ON DATABASE "new db" IS 'c';`,
      tolerant(`SECURITY LABEL FOR "selinux" ON DATABASE "new db" IS 'x'`, 'the selinux security label'),
      'ALTER DATABASE "new db" CONNECTION LIMIT 5;',
    ]);
    expect(r.warnings).toEqual([
      'privileges: role "ghost" does not exist on the target; its CONNECT on the database is not granted',
      'settings: role "ghost" does not exist on the target; its settings in this database are not applied',
    ]);
  });
  it('nothing to do when the target already matches; a missing owner keeps ours and maps its privileges', () => {
    expect(propertyStatements(base, 'd', { roles, current: base }).statements).toEqual([]);
    const r = propertyStatements({ ...base, owner: 'gone' }, 'd', { roles, current: base });
    expect(r.statements).toEqual([]);
    expect(r.warnings[0]).toContain('owner: role "gone" does not exist');
  });
  it('an existing database: settings the source lacks are reset, the comment cleared', () => {
    const current = { ...base, settings: [{ role: null, name: 'statement_timeout', value: '5s' }, { role: null, name: 'work_mem', value: '7MB' }], comment: 'mine' };
    const r = propertyStatements({ ...base, settings: [{ role: null, name: 'work_mem', value: '7MB' }] }, 'd', { roles, current });
    expect(r.statements).toEqual([tolerant('ALTER DATABASE "d" RESET statement_timeout', 'RESET statement_timeout'), 'COMMENT ON DATABASE "d" IS NULL;']);
  });
});

describe('createClauses', () => {
  it('spells the source for each server version, or says what the server lacks', () => {
    expect(createClauses({ ...base, encoding: 'LATIN1' }, 140010, {})).toMatchObject({ clauses: ['TEMPLATE template0', "ENCODING 'LATIN1'", "LC_COLLATE 'C'", "LC_CTYPE 'C'"] });
    expect(createClauses({ ...base, encoding: 'LATIN1' }, 150000, {})).toMatchObject({ clauses: ['TEMPLATE template0', "ENCODING 'LATIN1'", "LC_COLLATE 'C'", "LC_CTYPE 'C'", 'LOCALE_PROVIDER libc'] });
    const icu = { ...base, localeProvider: 'icu' as const, locale: 'de-DE', icuRules: '&a < g' };
    expect(createClauses(icu, 140000, {})).toHaveProperty('problem');
    expect(createClauses(icu, 150000, {})).toHaveProperty('problem');
    expect(createClauses(icu, 160000, {})).toMatchObject({ clauses: expect.arrayContaining(['LOCALE_PROVIDER icu', "ICU_LOCALE 'de-DE'", "ICU_RULES '&a < g'"]) });
    const builtin = { ...base, localeProvider: 'builtin' as const, locale: 'C.UTF-8' };
    expect(createClauses(builtin, 160000, {})).toHaveProperty('problem');
    expect(createClauses(builtin, 170000, {})).toMatchObject({ clauses: expect.arrayContaining(['LOCALE_PROVIDER builtin', "BUILTIN_LOCALE 'C.UTF-8'"]) });
    expect(createClauses(icu, 150000, { locale: 'C' })).toMatchObject({ clauses: ['TEMPLATE template0', "ENCODING 'UTF8'", "LC_COLLATE 'C'", "LC_CTYPE 'C'", 'LOCALE_PROVIDER libc'] });
    expect(createClauses(icu, 150000, { defaults: true })).toMatchObject({ clauses: ['TEMPLATE template0'] });
    expect(createClauses(undefined, 150000, { encoding: 'LATIN1' })).toMatchObject({ clauses: ['TEMPLATE template0', "ENCODING 'LATIN1'"] });
    expect(createClauses({ ...base, tablespace: 'fast' }, 150000, {}, new Set(['fast']))).toMatchObject({ clauses: expect.arrayContaining(['TABLESPACE "fast"']) });
    expect(createClauses({ ...base, tablespace: 'fast' }, 150000, {}, new Set())).toMatchObject({ notes: [expect.stringContaining('"fast" does not exist')] });
  });
});
