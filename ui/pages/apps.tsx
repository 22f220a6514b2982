// Apps: every app (#/apps), and one app with its replicas, endpoints, history,
// logs and terminal (#/apps/NAME[/TAB]).
import type { PageProps } from '../main.js';
import { AppsList } from '../parts/apps-list.js';
import { AppDetail } from '../parts/apps-detail.js';

export default function Apps({ route, me }: PageProps) {
  const [name, ...rest] = route;
  return name ? <AppDetail key={name} name={name} route={rest} me={me} /> : <AppsList me={me} />;
}
