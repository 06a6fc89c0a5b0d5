import { FolderStorage } from './folder.js';
import { S3Storage, type S3Options } from './s3.js';
import type { Storage } from './types.js';

export type { Storage, StoredObject, PutStreamOptions, GetOptions } from './types.js';
export { FolderStorage } from './folder.js';
export { S3Storage, makeS3Client, wrapS3Error } from './s3.js';

export type Target = { kind: 'folder'; path: string } | ({ kind: 's3' } & S3Options);

export function openStorage(t: Target): Storage {
  return t.kind === 'folder' ? new FolderStorage(t.path) : new S3Storage(t);
}
