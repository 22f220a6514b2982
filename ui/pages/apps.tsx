// Placeholder until this page is built.
import type { PageProps } from '../main.js';

export default function Page(_: PageProps) {
  return <p class="muted">This page is being built.</p>;
}
