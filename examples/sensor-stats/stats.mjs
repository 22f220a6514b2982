// The seed's three computations (mean, sum, product), done the way numpy does
// them so that answers match the seed's Flask service number for number.

// numpy's float64 add.reduce uses pairwise summation with 8 accumulators in
// blocks of up to 128 items; a naive left-to-right sum differs in the last bits
// for long arrays, which would break "same numbers" with the seed.
const BLOCK = 128;

function pairwise(a, start, n) {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += a[start + i];
    return res;
  }
  if (n <= BLOCK) {
    const r = [0, 0, 0, 0, 0, 0, 0, 0];
    for (let j = 0; j < 8; j++) r[j] = a[start + j];
    let i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (let j = 0; j < 8; j++) r[j] += a[start + i + j];
    }
    let res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) res += a[start + i];
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwise(a, start, n2) + pairwise(a, start + n2, n - n2);
}

export function sum(a) {
  return pairwise(a, 0, a.length);
}

export function mean(a) {
  return sum(a) / a.length;
}

// The product as numpy gives it (it under- or overflows for long arrays, which
// is the seed's behaviour and stays as is for compatibility).
export function product(a) {
  let p = 1;
  for (const x of a) p *= x;
  return p;
}

// log|product| and its sign: still meaningful where the plain product has
// underflowed to 0 or overflowed to Infinity.
export function logProduct(a) {
  let log = 0;
  let sign = 1;
  for (const x of a) {
    if (x === 0) return { log: -Infinity, sign: 0 };
    if (x < 0) sign = -sign;
    log += Math.log(Math.abs(x));
  }
  return { log, sign };
}
