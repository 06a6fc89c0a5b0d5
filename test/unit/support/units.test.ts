import { describe, it, expect } from 'vitest';
import { DAY, GiB, HOUR, KiB, MINUTE, MiB, TiB, durationLabel, formatAge, formatBytes, formatDuration, parseDuration, parseSize, sizeLabel } from '../../../src/support/units.js';

describe('sizes', () => {
  it('parses binary and decimal suffixes, case-insensitive, with or without a space', () => {
    expect(parseSize('4096')).toBe(4096);
    expect(parseSize('512b')).toBe(512);
    expect(parseSize('16MiB')).toBe(16 * MiB);
    expect(parseSize('64M')).toBe(64 * MiB);
    expect(parseSize('64 mb')).toBe(64_000_000);
    expect(parseSize('1G')).toBe(GiB);
    expect(parseSize('1.5GiB')).toBe(1.5 * GiB);
    expect(parseSize('2k')).toBe(2 * KiB);
    expect(parseSize('1kB')).toBe(1000);
    expect(parseSize('1TiB')).toBe(TiB);
    expect(parseSize(' 8MiB ')).toBe(8 * MiB);
  });

  it('rejects what is not a size', () => {
    for (const bad of ['', 'lots', '-1M', '1 2M', '1PB', 'M', '1.M', '0x10']) expect(parseSize(bad), bad).toBeUndefined();
  });

  it('formats for people', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1024)).toBe('1.0 KiB');
    expect(formatBytes(8 * MiB)).toBe('8.0 MiB');
    expect(formatBytes(1.5 * GiB)).toBe('1.5 GiB');
    expect(formatBytes(3 * 1024 * TiB)).toBe('3072.0 TiB');
  });

  it('labels exactly, in a form parseSize reads back', () => {
    for (const n of [1, 1000, 1536, KiB, 5 * MiB, 8 * MiB, 5 * GiB, 2 * TiB, 3 * MiB + 1]) expect(parseSize(sizeLabel(n)), String(n)).toBe(n);
    expect(sizeLabel(8 * MiB)).toBe('8MiB');
    expect(sizeLabel(5 * GiB)).toBe('5GiB');
    expect(sizeLabel(1536)).toBe('1536');
  });
});

describe('durations', () => {
  it('parses units and sums compound durations', () => {
    expect(parseDuration('1500ms')).toBe(1500);
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('10m')).toBe(10 * MINUTE);
    expect(parseDuration('1h30m')).toBe(90 * MINUTE);
    expect(parseDuration('2h')).toBe(2 * HOUR);
    expect(parseDuration('30d')).toBe(30 * DAY);
    expect(parseDuration('1.5h')).toBe(90 * MINUTE);
    expect(parseDuration(' 5m ')).toBe(5 * MINUTE);
    expect(parseDuration('0s')).toBe(0);
  });

  it('rejects what is not a duration (a unit is required)', () => {
    for (const bad of ['', '10', 'm', '5 m', '1w', '-5m', '1h 30m', 'soon']) expect(parseDuration(bad), bad).toBeUndefined();
  });

  it('formats for people', () => {
    expect(formatDuration(850)).toBe('850 ms');
    expect(formatDuration(12_345)).toBe('12.3 s');
    expect(formatDuration(4 * MINUTE + 5_000)).toBe('4m5s');
    expect(formatDuration(2 * HOUR + 10 * MINUTE)).toBe('2h10m');
    expect(formatAge(45 * MINUTE)).toBe('45m');
    expect(formatAge(30 * HOUR)).toBe('30h');
    expect(formatAge(12 * DAY + HOUR)).toBe('12d');
  });

  it('labels exactly, in a form parseDuration reads back', () => {
    for (const ms of [1, 999, 1000, MINUTE, 10 * MINUTE, 90 * MINUTE, DAY + 1, 30 * DAY]) expect(parseDuration(durationLabel(ms)), String(ms)).toBe(ms);
    expect(durationLabel(10 * MINUTE)).toBe('10m');
    expect(durationLabel(90 * MINUTE)).toBe('1h30m');
    expect(durationLabel(0)).toBe('0s');
  });
});
