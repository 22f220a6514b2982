// How good the model's predictions are: per deploy term, the relative error
// |predicted - measured| / measured over recorded deployments.
import type { ModelSample } from './types.js';
import { quantile } from './stats.js';

export interface TermError {
  /** deployments with a measured value above 0 for this term */
  n: number;
  /** the median of |predicted - measured| / measured, in percent; null with no deployment */
  medianPct: number | null;
  /** its 90th percentile */
  p90Pct: number | null;
}

export interface ModelError {
  /** deployments measured in full */
  samples: number;
  /** per deploy term */
  terms: Record<'imageMs' | 'containerMs' | 'engineMs' | 'deployMs', TermError>;
}

const TERMS = ['imageMs', 'containerMs', 'engineMs', 'deployMs'] as const;


/**
 * A term whose measurement is 0 (T_image of a cached image) has no relative
 * error; it is left out of that term's figures rather than counted as perfect.
 */
export function modelError(samples: ModelSample[], filter: (s: ModelSample) => boolean = () => true): ModelError {
  const picked = samples.filter(filter);
  const terms = {} as ModelError['terms'];
  for (const t of TERMS) {
    const errs = picked.filter((s) => s.measured[t] > 0).map((s) => (Math.abs(s.predicted[t] - s.measured[t]) / s.measured[t]) * 100).sort((a, b) => a - b);
    const r = (x: number | null) => (x === null ? null : Math.round(x * 10) / 10);
    terms[t] = { n: errs.length, medianPct: errs.length ? r(quantile(errs, 0.5)) : null, p90Pct: errs.length ? r(quantile(errs, 0.9)) : null };
  }
  return { samples: picked.length, terms };
}
