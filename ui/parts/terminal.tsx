// Placeholder until the terminal is built.
export function Terminal(_: { app: string; replica?: string; container?: string }) {
  return <p class="muted">The terminal is being built.</p>;
}
