// Reads the commander program (src/cli/program.ts) as the reference's command
// list: every command, its arguments and flags with their defaults, choices
// and environment variables, in the order the program declares them. The flags
// of settings carry their setting, which says what commander is not told.
import type { Command, Option } from 'commander';
import { defaultText, type Setting } from '../core/settings.js';

export interface OptionDoc {
  flags: string;
  /** required, the default, the choices and the variable behind it, as one cell */
  notes: string;
  meaning: string;
  /** the variable commander reads for it, if any */
  env?: string;
}

export interface CommandDoc {
  /** the full command: outpost site add */
  name: string;
  usage: string;
  description: string;
  options: OptionDoc[];
  /** full names of its subcommands */
  subcommands: string[];
}

function optionDoc(o: Option): OptionDoc {
  // a flag of a setting (src/core/settings.ts): commander knows neither its default nor its variable
  const s = (o as Option & { setting?: Setting }).setting;
  if (s) {
    const dflt = o.negate ? '' : defaultText(s);
    const notes = [
      s.required ? 'required' : '',
      dflt && (s.defaultText ? `default: ${dflt}` : `default \`${dflt}\``),
      s.kind.choices ? `one of ${s.kind.choices.map((c) => `\`${c}\``).join(', ')}` : '',
      s.env ? `env \`${s.env}\`` : '',
    ];
    return { flags: o.flags, notes: notes.filter(Boolean).join('; '), meaning: o.description, env: s.env };
  }
  const notes: string[] = [];
  if (o.mandatory) notes.push('required');
  // a --no-x flag's default (true) is commander's, not the user's
  if (!o.negate && o.defaultValue !== undefined) notes.push(`default \`${o.defaultValueDescription ?? String(o.defaultValue)}\``);
  if (o.argChoices) notes.push(`one of ${o.argChoices.map((c) => `\`${c}\``).join(', ')}`);
  if (o.envVar) notes.push(`env \`${o.envVar}\``);
  return { flags: o.flags, notes: notes.join('; '), meaning: o.description, env: o.envVar };
}

/** Every command below `program` (itself first), depth first. */
export function commandDocs(program: Command, parent = ''): CommandDoc[] {
  const name = parent ? `${parent} ${program.name()}` : program.name();
  const self: CommandDoc = {
    name,
    usage: `${name} ${program.usage()}`,
    description: program.description(),
    options: program.options.map(optionDoc),
    subcommands: program.commands.map((c) => `${name} ${c.name()}`),
  };
  return [self, ...program.commands.flatMap((c) => commandDocs(c, name))];
}
