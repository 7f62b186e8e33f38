import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { maskAccessKeyId } from '../../api/destinations.present.ts';
import {
  bucketSchema,
  endpointSchema,
  prefixSchema,
  regionSchema,
  s3LocationOf,
} from '../../common/destination-spec.ts';

const ok = (schema: { safeParse: (v: unknown) => { success: boolean } }, value: string) =>
  assert.equal(schema.safeParse(value).success, true, value);
const bad = (schema: { safeParse: (v: unknown) => { success: boolean } }, value: string) =>
  assert.equal(schema.safeParse(value).success, false, value);

describe('destination fields', () => {
  it('takes bucket names every provider accepts, and nothing else', () => {
    for (const name of ['abc', 'acme-backups', 'my.bucket.01', 'a'.repeat(63)]) ok(bucketSchema, name);
    for (const name of [
      'ab',
      'a'.repeat(64),
      'Bad_Bucket',
      'UPPER',
      '-abc',
      'abc-',
      'a..b',
      '192.168.1.1',
      'a b',
    ])
      bad(bucketSchema, name);
  });

  it('keeps a prefix inside the bucket and spells it one way', () => {
    assert.equal(prefixSchema.parse('backups/'), 'backups');
    assert.equal(prefixSchema.parse('team/prod'), 'team/prod');
    assert.equal(prefixSchema.parse(''), '');
    for (const prefix of ['/abs', '..', 'a/../b', 'a//b', 'a\\b', 'a\nb', 'x'.repeat(513)])
      bad(prefixSchema, prefix);
  });

  it('takes http and https endpoints, never with credentials in them', () => {
    for (const url of [
      'https://s3.eu-central-003.backblazeb2.com',
      'http://203.0.114.7:9000',
      'https://h/s3',
    ])
      ok(endpointSchema, url);
    for (const url of [
      'ftp://h',
      'h:9000',
      'https://u:p@h',
      'https://u@h',
      'https://h?x=1',
      'https://h#f',
      'file:///x',
      // An address the outbound guard refuses (the operator allows none here): common/outbound-guard.ts.
      'http://127.0.0.1:9000',
      'http://169.254.169.254',
    ])
      bad(endpointSchema, url);
  });

  it('takes the regions providers use', () => {
    for (const region of ['us-east-1', 'auto', 'fsn1', 'us-west-004', 'garage']) ok(regionSchema, region);
    for (const region of ['', 'us east', 'x/y']) bad(regionSchema, region);
  });

  it('leaves the endpoint out of the S3 location for AWS itself', () => {
    const connection = {
      region: 'eu-west-1',
      bucket: 'b',
      prefix: '',
      pathStyle: false,
      accessKeyId: 'AKIA',
      secretAccessKey: 's',
    };
    assert.deepEqual(s3LocationOf({ ...connection, endpoint: null }), {
      region: 'eu-west-1',
      accessKeyId: 'AKIA',
      secretAccessKey: 's',
      forcePathStyle: false,
    });
    assert.equal(s3LocationOf({ ...connection, endpoint: 'http://h:1' }).endpoint, 'http://h:1');
  });

  it('shows the last four characters of an access key id, and less of a short one', () => {
    assert.equal(maskAccessKeyId('AKIAIOSFODNN7EXAMPLE'), '…MPLE');
    assert.equal(maskAccessKeyId('devkey'), '…ey');
    assert.equal(maskAccessKeyId('ab'), '…');
  });
});
