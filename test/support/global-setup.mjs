// One PostgreSQL cluster and one S3-compatible server for the whole suite; stopped at the end.
import { startCluster, clientBinDir } from './pg.mjs';
import { startS3 } from './s3.mjs';

export default async function setup(project) {
  const cluster = await startCluster();
  const s3 = await startS3({ buckets: ['backups', 'other'] });
  project.provide('pg', { port: cluster.port, password: cluster.password, binDir: clientBinDir(), serverBinDir: cluster.binDir, version: cluster.version, pid: cluster.pid });
  project.provide('s3', { endpoint: s3.endpoint, env: s3.env, dir: s3.dir, port: s3.port });
  return async () => {
    await s3.stop();
    await cluster.stop();
  };
}
