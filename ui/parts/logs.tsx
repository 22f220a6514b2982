// Placeholder until the live log view is built.
export function Logs(_: { app: string; replica?: string; container?: string }) {
  return <p class="muted">Logs are being built.</p>;
}
