import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imageCatalog, missingImageBytes } from './images.js';
import type { NodeRecord } from './types.js';

test('the bytes a pull needs are the reported layers the node lacks, or null for an image no node has reported', () => {
  const layers = [{ digest: 'sha256:a', bytes: 100 }, { digest: 'sha256:b', bytes: 50 }];
  const catalog = imageCatalog([{ imageLayers: { 'localhost/app:1': layers } } as unknown as NodeRecord]);
  assert.equal(missingImageBytes(catalog, 'localhost/app:1', []), 150);
  assert.equal(missingImageBytes(catalog, 'localhost/app:1', [{ digest: 'sha256:a', bytes: 100 }]), 50, 'a shared base layer is not pulled again');
  assert.equal(missingImageBytes(catalog, 'localhost/app:1', layers), 0);
  assert.equal(missingImageBytes(catalog, 'localhost/other:1', []), null);
  assert.equal(missingImageBytes(catalog, undefined, []), null, 'a process app has no image');
});
