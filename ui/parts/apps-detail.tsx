// One app: its revision and current rollout (state, progress), the actions
// (deploy, roll back, remove), and its tabs (replicas, endpoints, measured
// demand, history, logs, terminal). The app with its replicas is one
// request (GET /v1/apps/NAME), made again when an event names the app: every
// replica, rollout and deploy event does, so a rollout's state is on screen
// within a second of its event.
import { useState } from 'preact/hooks';
import type { AppDetail as App, WhoAmI } from '../../src/contract/api.js';
import { api, enc } from '../api.js';
import { href, useLoad } from '../hooks.js';
import { ago, Badge, ErrorBox } from './common.js';
import { Actions, DeployEditor } from './apps-actions.js';
import { rolloutProgress, runningRevision, useRollout } from './apps-revision.js';
import { imagesOf } from './apps-list.js';
import { Replicas } from './apps-replicas.js';
import { Endpoints } from './apps-endpoints.js';
import { Demand } from './apps-demand.js';
import { History } from './apps-history.js';
import { Console } from './apps-console.js';

export const TABS = ['replicas', 'endpoints', 'demand', 'history', 'logs', 'terminal'] as const;
type Tab = (typeof TABS)[number];

interface HeaderProps {
  app: App;
  me: WhoAmI;
  onDeploy: () => void;
  editing: boolean;
  /** what the last action did */
  notice: string | null;
  say: (s: string) => void;
}

function Header({ app, me, onDeploy, editing, notice, say }: HeaderProps) {
  const ro = app.rollout;
  const p = rolloutProgress(app);
  const at = runningRevision(app);
  return (
    <section class="card app-head" data-testid="app-detail" data-app={app.name}>
      <header>
        <div class="row">
          <h1>{app.name}</h1>
          <span class="rev" data-testid="app-revision" data-revision={app.revision ?? ''} title="the app's revision: every change to what its replicas run is a new one (an undo too)">revision {app.revision ?? '-'}</span>
          {at !== null && at !== app.revision && <span class="muted">runs revision {at}'s spec</span>}
          {ro && (
            <span class="row" data-testid="app-rollout" data-state={ro.status}>
              {ro.status === 'rolled-back' ? `rolled back to revision ${ro.revision}` : `rollout of revision ${ro.revision}`} <Badge state={ro.status} />
              {p && (
                <span class="progress" title={`${p.done} of ${p.want} replicas run revision ${ro.revision} and are ready`}>
                  <span class="bar"><span style={{ width: `${p.want ? Math.min(100, (100 * p.done) / p.want) : 100}%` }} /></span>
                  {p.done}/{p.want} ready
                </span>
              )}
            </span>
          )}
        </div>
        <Actions app={app} me={me} onDeploy={onDeploy} editing={editing} say={say} />
      </header>
      {notice && <p class="notice" role="status">{notice}</p>}
      {ro?.message && <p class={ro.status === 'complete' || ro.status === 'progressing' ? 'muted' : 'error'}>{ro.message}</p>}
      <p class="muted">
        <span class="mono">{imagesOf(app)}</span> · {app.running} of {app.spec.replicas} running · rollout started {ago(ro?.startedAt)} · updated {ago(app.updatedAt)}
      </p>
    </section>
  );
}

export function AppDetail({ name, route, me }: { name: string; route: string[]; me: WhoAmI }) {
  const app = useLoad((s) => api<App>(`/v1/apps/${enc(name)}`, { signal: s }), [name], { on: (e) => e.app === name });
  const [editing, setEditing] = useState(false);
  const [notice, say] = useState<string | null>(null);
  const tab: Tab = (TABS as readonly string[]).includes(route[0] ?? '') ? (route[0] as Tab) : 'replicas';
  const rollout = useRollout(name, app.data?.rollout ?? null);
  const a = app.data && { ...app.data, rollout };
  if (!a) {
    return (
      <>
        <p class="crumbs"><a href={href('apps')}>← all apps</a></p>
        {app.error ? <ErrorBox error={app.error} /> : <p class="muted">loading {name} ...</p>}
      </>
    );
  }
  return (
    <>
      <p class="crumbs"><a href={href('apps')}>← all apps</a></p>
      {/* the app may be gone (removed elsewhere): say so over the last state seen */}
      <ErrorBox error={app.error} />
      <Header app={a} me={me} onDeploy={() => { setEditing(true); say(null); }} editing={editing} notice={notice} say={say} />
      {editing && <DeployEditor app={a} onClose={() => setEditing(false)} say={say} />}
      <section class="card">
        <div class="tabs" role="tablist" aria-label="app views">
          {TABS.map((t) => <a href={href('apps', name, t)} class={t === tab ? 'here' : ''} role="tab" aria-selected={t === tab} data-testid={`tab-${t}`}>{t[0]!.toUpperCase() + t.slice(1)}</a>)}
        </div>
        {tab === 'replicas' && <Replicas app={a} />}
        {tab === 'endpoints' && <Endpoints app={a} me={me} />}
        {tab === 'demand' && <Demand name={a.name} />}
        {tab === 'history' && <History app={a} />}
        {(tab === 'logs' || tab === 'terminal') && <Console key={tab} kind={tab} app={a} me={me} replica={route[1]} container={route[2]} />}
      </section>
    </>
  );
}
