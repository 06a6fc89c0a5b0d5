import { describe, it, expect } from 'vitest';
import { addToCounter, parseSampleLine, parseText, renderText, setSample, type Sample } from '../../src/model/prometheus.js';

describe('prometheus text format', () => {
  it('renders HELP and TYPE once per metric, escapes labels, and reads back what it wrote', () => {
    let s: Sample[] = [];
    s = setSample(s, { name: 'pgbackup_last_size_bytes', labels: { database: 'a"b\\c\nd', target: '/x' }, value: 12 });
    s = addToCounter(s, 'pgbackup_failures_total', { command: 'backup', database: 'a', target: '/x' });
    s = addToCounter(s, 'pgbackup_failures_total', { command: 'backup', database: 'a', target: '/x' });
    s = setSample(s, { name: 'pgbackup_last_size_bytes', labels: { database: 'a"b\\c\nd', target: '/x' }, value: 13 });
    const text = renderText(s);
    expect(text).toBe(
      '# HELP pgbackup_failures_total Failed runs of a command for the database, counted across runs.\n' +
        '# TYPE pgbackup_failures_total counter\n' +
        'pgbackup_failures_total{command="backup",database="a",target="/x"} 2\n' +
        '# HELP pgbackup_last_size_bytes Stored size of the newest complete full backup, in bytes.\n' +
        '# TYPE pgbackup_last_size_bytes gauge\n' +
        'pgbackup_last_size_bytes{database="a\\"b\\\\c\\nd",target="/x"} 13\n',
    );
    const back = parseText(text);
    expect(back.bad).toEqual([]);
    expect(renderText(back.samples)).toBe(text);
  });

  it('refuses malformed sample lines', () => {
    for (const l of ['x{a="b} 1', 'x{a="\\q"} 1', 'x{a="1",a="2"} 1', 'x 1 2 3', 'x{a=1} 1', 'x one']) expect(parseSampleLine(l), l).toBeNull();
    expect(parseSampleLine('x{a="1",} 2.5 1700000000000')).toEqual({ name: 'x', labels: { a: '1' }, value: 2.5 });
  });
});
