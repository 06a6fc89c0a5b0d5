/**
 * Multipart part-size planning (pure). S3 allows at most 10,000 parts of 5 MiB to 5 GiB, and
 * objects up to 5 TiB. We size parts from an upper estimate of the stored object so that the
 * plan holds it with room to spare, and refuse to go past the plan rather than fail at part 10,001.
 */
export const MIB = 1024 * 1024;
export const MIN_PART = 5 * MIB;
export const MAX_PART = 5 * 1024 * MIB;
export const MAX_OBJECT = 5 * 1024 * 1024 * MIB;
export const DEFAULT_PART = 8 * MIB;
export const S3_MAX_PARTS = 10_000;

export interface PartPlan {
  partSize: number;
  maxParts: number;
  /** The most bytes this plan can store. */
  capacity: number;
}

/**
 * `dbBytes`: pg_database_size. Plain SQL can be larger than the on-disk size (bytea as hex is
 * twice its size, and compression may win nothing on it), so we plan for 2x + 1 GiB, using at
 * most 90% of the part limit.
 */
export function planParts(dbBytes: number, configured: number | undefined, maxParts = S3_MAX_PARTS, maxPart = MAX_PART): PartPlan {
  const estimate = Math.min(MAX_OBJECT, 2 * Math.max(0, dbBytes) + 1024 * MIB);
  const usable = Math.max(1, Math.floor(maxParts * 0.9));
  const needed = Math.ceil(estimate / usable / MIB) * MIB;
  const partSize = Math.min(maxPart, Math.max(configured ?? DEFAULT_PART, needed, MIN_PART));
  return { partSize, maxParts, capacity: Math.min(MAX_OBJECT, partSize * maxParts) };
}

/**
 * Parts uploaded at once. Three 8 MiB parts in flight outrun the compressor on any network that
 * reaches S3 at 30 MB/s or more, and keep the upload's memory at (3 + 1) x 8 MiB.
 */
export const DEFAULT_QUEUE = 3;
/** The most parts --queue-size may put in flight. */
export const MAX_QUEUE = 64;
