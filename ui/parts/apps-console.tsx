// The Logs and Terminal tabs: a replica and container picker (kept in the
// route, #/apps/NAME/TAB/REPLICA/CONTAINER, so a link opens the same view)
// above the live log view or the terminal. Those two are loaded when first
// opened, so xterm.js stays out of the apps page's chunk.
import type { ComponentType } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { AppDetail, WhoAmI } from '../../src/contract/api.js';
import { ApiError } from '../api.js';
import { href } from '../hooks.js';
import { ErrorBox } from './common.js';
import { lacks } from './apps-actions.js';

type Kind = 'logs' | 'terminal';
interface ViewProps { app: string; replica?: string; container?: string }

/** In the route, the default replica (every one for logs, the first running one for a terminal). */
const ANY = '*';

const VIEWS: Record<Kind, { cap: string; load: () => Promise<ComponentType<ViewProps>>; any: string }> = {
  logs: { cap: 'app:logs', load: () => import('./logs.js').then((m) => m.Logs), any: 'every replica' },
  terminal: { cap: 'app:exec', load: () => import('./terminal.js').then((m) => m.Terminal), any: 'the first running one (ready first)' },
};

export function Console({ kind, app, me, replica, container }: { kind: Kind; app: AppDetail; me: WhoAmI; replica?: string; container?: string }) {
  const view = VIEWS[kind];
  const [View, setView] = useState<ComponentType<ViewProps> | null>(null);
  const [err, setErr] = useState<ApiError | null>(null);
  const why = lacks(me, view.cap);
  useEffect(() => {
    if (why) return;
    view.load().then((c) => setView(() => c), (e: Error) => setErr(new ApiError(0, 'E_LOAD', `the ${kind} view could not be loaded: ${e.message}`)));
  }, [kind]);
  const rep = replica && replica !== ANY ? replica : undefined;
  const containers = (app.spec.containers ?? []).map((c) => c.name);
  const go = (picked: string | undefined, c: string | undefined): void => {
    const r = picked === ANY ? undefined : picked;
    location.hash = href('apps', app.name, kind, ...(r || c ? [r ?? ANY] : []), ...(c ? [c] : []));
  };
  const known = app.replicas.some((r) => r.id === rep);
  return (
    <div class="console">
      <div class="row picker">
        <label>replica{' '}
          <select data-testid="replica-picker" value={rep ?? ANY} onChange={(e) => go((e.target as HTMLSelectElement).value, container)}>
            <option value={ANY}>{view.any}</option>
            {app.replicas.map((r) => (
              <option value={r.id} disabled={kind === 'terminal' && r.state !== 'running'}>{r.id} on {r.node} ({r.state}{r.state === 'running' && r.ready === false ? ', unhealthy' : ''})</option>
            ))}
            {rep && !known && <option value={rep}>{rep} (gone)</option>}
          </select>
        </label>
        {containers.length > 1 && (
          <label>container{' '}
            <select data-testid="container-picker" value={container ?? ''} onChange={(e) => go(rep, (e.target as HTMLSelectElement).value || undefined)}>
              <option value="">{containers[0]} (the first)</option>
              {containers.slice(1).map((c) => <option value={c}>{c}</option>)}
            </select>
          </label>
        )}
      </div>
      <ErrorBox error={err} />
      {why ? <p class="muted">{why}: {kind === 'logs' ? 'logs are' : 'a terminal is'} not open to it.</p>
        : View ? <View key={`${rep ?? ANY}/${container ?? ''}`} app={app.name} replica={rep} container={container} />
          : !err && <p class="muted">loading ...</p>}
    </div>
  );
}
