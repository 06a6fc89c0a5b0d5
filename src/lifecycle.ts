/**
 * Retention as S3 lifecycle rules (pure): one rule per tier tag under the prefix, one that
 * aborts incomplete multipart uploads after 1 day, one that expires noncurrent versions.
 * The Terraform module in infra/terraform declares the same rules (a test holds them equal).
 */
import type { RetentionDays } from './config.js';
import { TIERS } from './keys.js';

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

export function lifecycleRules(prefix: string, days: RetentionDays, noncurrentDays = NONCURRENT_DAYS): Rule[] {
  const rules: Rule[] = TIERS.map((tier) => ({
    ID: `${RULE_PREFIX}${tier}`,
    Status: 'Enabled',
    Filter: prefix ? { And: { Prefix: prefix, Tags: [{ Key: 'tier', Value: tier }] } } : { Tag: { Key: 'tier', Value: tier } },
    Expiration: { Days: days[tier] },
  }));
  rules.push({
    ID: `${RULE_PREFIX}abort-incomplete-uploads`,
    Status: 'Enabled',
    Filter: { Prefix: prefix },
    AbortIncompleteMultipartUpload: { DaysAfterInitiation: ABORT_DAYS },
  });
  rules.push({
    ID: `${RULE_PREFIX}noncurrent-versions`,
    Status: 'Enabled',
    Filter: { Prefix: prefix },
    NoncurrentVersionExpiration: { NoncurrentDays: noncurrentDays },
    Expiration: { ExpiredObjectDeleteMarker: true },
  });
  return rules;
}

/** Our rules replace our old ones; everyone else's rules stay. */
export function mergeRules(existing: Array<{ ID?: string }>, ours: Rule[]): Array<Rule | { ID?: string }> {
  return [...existing.filter((r) => !(r.ID ?? '').startsWith(RULE_PREFIX)), ...ours];
}

/** A readable comparison of the rules found on a bucket with the ones wanted. */
export function ruleDifferences(found: Array<Record<string, unknown>>, wanted: Rule[]): string[] {
  const out: string[] = [];
  // The fields that make a rule do what it does, in one order, as JSON.
  const shape = (r: Record<string, unknown>) =>
    JSON.stringify({ Filter: r.Filter, Expiration: r.Expiration, Abort: r.AbortIncompleteMultipartUpload, Noncurrent: r.NoncurrentVersionExpiration, Status: r.Status });
  for (const w of wanted) {
    const f = found.find((r) => r.ID === w.ID);
    if (!f) {
      out.push(`rule ${w.ID} is missing`);
      continue;
    }
    const [got, want] = [shape(f), shape(w as unknown as Record<string, unknown>)];
    if (got !== want) out.push(`rule ${w.ID} differs: found ${got}, wanted ${want}`);
  }
  return out;
}
