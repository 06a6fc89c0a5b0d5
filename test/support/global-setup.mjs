// One PostgreSQL cluster and two S3 servers for the whole suite: s3rver (light, the default of
// the tests) and Ceph RGW (a real S3 implementation: lifecycle, multipart listing, conditional
// writes, tagging; see rgw.mjs). Started side by side; stopped at the end.
import { startCluster, clientBinDir } from './pg.mjs';
import { startS3 } from './s3.mjs';
import { startRgw } from './rgw.mjs';

export default async function setup(project) {
  const started = await Promise.allSettled([startCluster(), startS3({ buckets: ['backups', 'other'] }), startRgw({ buckets: ['backups'] })]);
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    for (const r of started) if (r.status === 'fulfilled') await r.value.stop().catch(() => {});
    throw failed.reason;
  }
  const [cluster, s3, rgw] = started.map((r) => r.value);
  project.provide('pg', { port: cluster.port, password: cluster.password, binDir: clientBinDir(), serverBinDir: cluster.binDir, version: cluster.version, pid: cluster.pid });
  project.provide('s3', { endpoint: s3.endpoint, env: s3.env, dir: s3.dir, port: s3.port });
  project.provide('rgw', { endpoint: rgw.endpoint, env: rgw.env, accessKey: rgw.accessKey, secretKey: rgw.secretKey, conf: rgw.conf, lcDayS: rgw.lcDayS, startMs: rgw.startMs });
  return async () => {
    // For the CI log: what RGW costs.
    process.stdout.write(`Ceph RGW: started in ${(rgw.startMs / 1000).toFixed(1)} s; its daemons held ${Math.round(rgw.rss() / 2 ** 20)} MB at the end\n`);
    await rgw.stop();
    await s3.stop();
    await cluster.stop();
  };
}
