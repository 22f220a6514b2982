// Pagination of list answers: `?limit=N&after=KEY` gives the N records after
// KEY in key order; when more remain, the answer's `x-next-after` header holds
// the key to ask after next. Without `limit`, the whole list (as before pages).
import type { FastifyReply } from 'fastify';
import { numberParam } from '../../core/query.js';
import { OutpostError } from '../../core/errors.js';

export const MAX_PAGE = 5000;
export const NEXT_HEADER = 'x-next-after';

export interface PageQuery {
  limit?: string;
  after?: string;
}

/** One page of `items` (sorted by `key`), with the next-page header set on `reply`. */
export function page<T>(items: T[], key: (x: T) => string, q: PageQuery, reply: FastifyReply): T[] {
  const limit = numberParam(q.limit, 'limit');
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE)) throw new OutpostError('E_INVALID', `limit must be an integer from 1 to ${MAX_PAGE}`, { path: 'limit' });
  let from = 0;
  if (q.after !== undefined) {
    // binary search: the first key after `after`
    let lo = 0;
    let hi = items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (key(items[mid]!) <= q.after) lo = mid + 1;
      else hi = mid;
    }
    from = lo;
  }
  if (limit === undefined) return from === 0 ? items : items.slice(from);
  const out = items.slice(from, from + limit);
  if (from + limit < items.length) void reply.header(NEXT_HEADER, key(out[out.length - 1]!));
  return out;
}
