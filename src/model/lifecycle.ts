/**
 * Retention as S3 lifecycle rules (pure): one rule per tier tag under the prefix, one that
 * aborts incomplete multipart uploads after 1 day, one that expires noncurrent versions.
 * The Terraform module in infra/terraform declares the same rules (a test holds them equal).
 */
import { TIERS } from './keys.js';

/** Days each tier is kept before its lifecycle rule expires it. */
export interface RetentionDays {
  daily: number;
  weekly: number;
  monthly: number;
  yearly: number;
}

export const DEFAULT_RETENTION: RetentionDays = Object.freeze({ daily: 7, weekly: 35, monthly: 400, yearly: 3650 });

/** PGBACKUP_KEEP_*_DAYS may say at most this (a hundred years). */
export const MAX_RETENTION_DAYS = 36_500;

export const RULE_PREFIX = 'pgbackup-';
export const ABORT_DAYS = 1;
export const NONCURRENT_DAYS = 7;

export interface Rule {
  ID: string;
  Status: 'Enabled';
  Filter: { Prefix?: string; Tag?: { Key: string; Value: string }; And?: { Prefix: string; Tags: Array<{ Key: string; Value: string }> } };
  Expiration?: { Days?: number; ExpiredObjectDeleteMarker?: boolean };
  AbortIncompleteMultipartUpload?: { DaysAfterInitiation: number };
  NoncurrentVersionExpiration?: { NoncurrentDays: number };
}

/** Longest target prefix whose rule IDs fit S3's 255 characters. */
export const MAX_RULE_PREFIX = 200;

/**
 * Rule IDs carry the target prefix (`pgbackup-prod/daily`; `pgbackup-daily` without one), so
 * the rules of several prefixes in one bucket live side by side.
 */
export function ruleId(prefix: string, name: string): string {
  return `${RULE_PREFIX}${prefix}${name}`;
}

const RULE_NAMES = [...TIERS, 'abort-incomplete-uploads', 'noncurrent-versions'];

export function lifecycleRules(prefix: string, days: RetentionDays, noncurrentDays = NONCURRENT_DAYS): Rule[] {
  const rules: Rule[] = TIERS.map((tier) => ({
    ID: ruleId(prefix, tier),
    Status: 'Enabled',
    Filter: prefix ? { And: { Prefix: prefix, Tags: [{ Key: 'tier', Value: tier }] } } : { Tag: { Key: 'tier', Value: tier } },
    Expiration: { Days: days[tier] },
  }));
  rules.push({
    ID: ruleId(prefix, 'abort-incomplete-uploads'),
    Status: 'Enabled',
    Filter: { Prefix: prefix },
    AbortIncompleteMultipartUpload: { DaysAfterInitiation: ABORT_DAYS },
  });
  rules.push({
    ID: ruleId(prefix, 'noncurrent-versions'),
    Status: 'Enabled',
    Filter: { Prefix: prefix },
    NoncurrentVersionExpiration: { NoncurrentDays: noncurrentDays },
    Expiration: { ExpiredObjectDeleteMarker: true },
  });
  return rules;
}

/** The prefix a rule's filter names ('' for none). */
export function rulePrefix(r: { Filter?: unknown; Prefix?: string }): string {
  const f = (r.Filter ?? {}) as { Prefix?: string; And?: { Prefix?: string } };
  return f.And?.Prefix ?? f.Prefix ?? r.Prefix ?? '';
}

/** A rule written by pgbackup before rule IDs carried the prefix, for this prefix. */
export function isLegacyRuleFor(r: { ID?: string; Filter?: unknown; Prefix?: string }, prefix: string): boolean {
  return prefix !== '' && RULE_NAMES.some((n) => r.ID === `${RULE_PREFIX}${n}`) && rulePrefix(r) === prefix;
}

/**
 * This prefix's rules replace its old ones (also those from before IDs carried the prefix);
 * every other rule stays, other prefixes' pgbackup rules included.
 */
export function mergeRules<T extends { ID?: string; Filter?: unknown; Prefix?: string }>(existing: T[], ours: Rule[], prefix = ''): Array<Rule | T> {
  const mine = new Set(ours.map((r) => r.ID));
  return [...existing.filter((r) => !mine.has(r.ID ?? '') && !isLegacyRuleFor(r, prefix)), ...ours];
}

/**
 * What a rule does, in one canonical form: S3 servers answer the same rule in several shapes
 * (Ceph RGW returns a one-tag filter as {Prefix, Tag} instead of {And: {Prefix, Tags}}, and a
 * filter of Prefix "" as the rule's top-level Prefix), leave out defaults, and order tags freely.
 */
export function ruleMeaning(r: Record<string, unknown>): string {
  type Tag = { Key?: string; Value?: string };
  const f = (r.Filter ?? {}) as { Prefix?: string; Tag?: Tag; And?: { Prefix?: string; Tags?: Tag[]; ObjectSizeGreaterThan?: number; ObjectSizeLessThan?: number }; ObjectSizeGreaterThan?: number; ObjectSizeLessThan?: number };
  const tags = [...(f.Tag ? [f.Tag] : []), ...(f.And?.Tags ?? [])].map((t) => `${t.Key ?? ''}=${t.Value ?? ''}`).sort();
  const e = (r.Expiration ?? {}) as { Days?: number; Date?: Date | string; ExpiredObjectDeleteMarker?: boolean };
  const n = (r.NoncurrentVersionExpiration ?? {}) as { NoncurrentDays?: number; NewerNoncurrentVersions?: number };
  const a = (r.AbortIncompleteMultipartUpload ?? {}) as { DaysAfterInitiation?: number };
  return JSON.stringify({
    status: r.Status ?? 'Enabled',
    prefix: f.And?.Prefix ?? f.Prefix ?? (r.Prefix as string | undefined) ?? '',
    tags,
    larger: f.And?.ObjectSizeGreaterThan ?? f.ObjectSizeGreaterThan ?? null,
    smaller: f.And?.ObjectSizeLessThan ?? f.ObjectSizeLessThan ?? null,
    expireDays: e.Days ?? null,
    expireDate: e.Date ? new Date(e.Date).toISOString() : null,
    deleteMarkers: e.ExpiredObjectDeleteMarker ?? false,
    noncurrentDays: n.NoncurrentDays ?? null,
    newerNoncurrent: n.NewerNoncurrentVersions ?? null,
    abortDays: a.DaysAfterInitiation ?? null,
    transitions: r.Transitions ?? r.Transition ?? null,
  });
}

/** A readable comparison of the rules found on a bucket with the ones wanted, by meaning (ruleMeaning). */
export function ruleDifferences(found: Array<Record<string, unknown>>, wanted: Rule[]): string[] {
  const out: string[] = [];
  for (const w of wanted) {
    const want = ruleMeaning(w as unknown as Record<string, unknown>);
    const f = found.find((r) => r.ID === w.ID);
    if (!f) {
      // The same rule under another ID does the same.
      const same = found.find((r) => ruleMeaning(r) === want);
      if (!same) out.push(`rule ${w.ID} is missing`);
      continue;
    }
    const got = ruleMeaning(f);
    if (got !== want) out.push(`rule ${w.ID} differs: found ${got}, wanted ${want}`);
  }
  return out;
}
