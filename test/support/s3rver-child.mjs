// Runs s3rver in its own process. Started with --openssl-legacy-provider: s3rver encrypts its
// ListObjectsV2 continuation tokens with DES, which OpenSSL 3 only has in its legacy provider.
import S3rver from 's3rver';

const [dir, port, ...buckets] = process.argv.slice(2);
const server = new S3rver({ port: Number(port), address: '127.0.0.1', directory: dir, silent: true, configureBuckets: buckets.map((name) => ({ name })) });
await server.run();
process.stdout.write('ready\n');
const stop = async () => {
  await server.close().catch(() => {});
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop); // the parent went away
process.stdin.resume();
