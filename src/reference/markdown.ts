// Markdown for the reference: tables, and the generated blocks of a page.
// A page is hand-written text with blocks between
//   <!-- generated: KIND ARGS -->  and  <!-- end generated -->
// whose content the generator replaces with what KIND ARGS produces now.

/** A table cell: one line, pipes escaped. */
export function cell(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|');
}

export function table(headers: string[], rows: string[][]): string {
  const line = (r: string[]) => `| ${r.map(cell).join(' | ')} |`;
  return [line(headers), `|${headers.map(() => ' --- ').join('|')}|`, ...rows.map(line)].join('\n');
}

export const code = (s: string) => `\`${s}\``;

export function fence(lang: string, text: string): string {
  return `\`\`\`${lang}\n${text.replace(/\n$/, '')}\n\`\`\``;
}

const BLOCK = /<!-- generated: ([^\n]*?) -->\n[\s\S]*?<!-- end generated -->/g;

/** The page with every generated block rebuilt by `render(spec)`, where spec is the text after "generated:". */
export function fillBlocks(page: string, render: (spec: string) => string): string {
  const opens = page.match(/<!-- generated:/g)?.length ?? 0;
  const blocks = page.match(BLOCK)?.length ?? 0;
  if (opens !== blocks) throw new Error('a "<!-- generated: ... -->" marker has no "<!-- end generated -->" after it');
  return page.replace(BLOCK, (_m, spec: string) => `<!-- generated: ${spec} -->\n${render(spec.trim()).replace(/\n$/, '')}\n<!-- end generated -->`);
}
