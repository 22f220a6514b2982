// Reads TypeScript sources as the reference's JSON shapes and route lists:
// an interface's fields (its `extends` first) with their types and doc
// comments, and the routes a Fastify file registers. The API's answers are
// these interfaces, so documenting them from the source keeps the docs true.
import fs from 'node:fs';
import ts from 'typescript';

export interface MemberRow {
  name: string;
  type: string;
  optional: boolean;
  doc: string;
}

export interface Route {
  method: string;
  path: string;
}

function parse(file: string): ts.SourceFile {
  return ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
}

function docOf(node: ts.Node): string {
  return ts.getJSDocCommentsAndTags(node)
    .map((d) => (ts.isJSDoc(d) ? ts.getTextOfJSDocComment(d.comment) ?? '' : ''))
    .join(' ').replace(/\s+/g, ' ').trim();
}

export class Declarations {
  private readonly interfaces = new Map<string, ts.InterfaceDeclaration>();
  /** type aliases that are unions of string literals (Runtime, ReplicaState): shown as their values */
  private readonly literals = new Map<string, string>();

  constructor(files: string[]) {
    for (const f of files) {
      ts.forEachChild(parse(f), (n) => {
        if (ts.isTypeAliasDeclaration(n) && ts.isUnionTypeNode(n.type) && n.type.types.every((t) => ts.isLiteralTypeNode(t) && ts.isStringLiteral(t.literal))) {
          this.literals.set(n.name.text, n.type.getText());
        }
        if (!ts.isInterfaceDeclaration(n)) return;
        if (this.interfaces.has(n.name.text)) throw new Error(`interface ${n.name.text} is declared twice in the reference's sources`);
        this.interfaces.set(n.name.text, n);
      });
    }
  }

  /** The interface's own doc comment. */
  doc(name: string): string {
    return docOf(this.get(name));
  }

  /** Its fields, those it extends first; a field it redeclares keeps its place. */
  members(name: string): MemberRow[] {
    const decl = this.get(name);
    const rows: MemberRow[] = [];
    for (const h of decl.heritageClauses ?? []) {
      for (const t of h.types) {
        if (t.typeArguments || !ts.isIdentifier(t.expression)) throw new Error(`${name} extends ${t.getText()}: the reference reads only plain interfaces`);
        rows.push(...this.members(t.expression.text));
      }
    }
    for (const m of decl.members) {
      let row: MemberRow;
      if (ts.isPropertySignature(m) && m.type) {
        row = { name: m.name.getText(), type: this.typeText(m.type), optional: !!m.questionToken, doc: docOf(m) };
      } else if (ts.isIndexSignatureDeclaration(m) && m.type) {
        row = { name: `[${m.parameters.map((p) => p.name.getText()).join(', ')}]`, type: this.typeText(m.type), optional: false, doc: docOf(m) };
      } else {
        throw new Error(`${name}: the reference cannot read the member ${m.getText()}`);
      }
      if (!row.doc && !rows.some((r) => r.name === row.name && r.doc)) throw new Error(`${name}.${row.name} has no doc comment: the reference needs one`);
      const i = rows.findIndex((r) => r.name === row.name);
      if (i >= 0) rows[i] = { ...row, doc: row.doc || rows[i]!.doc };
      else rows.push(row);
    }
    return rows;
  }

  /** A type as written, on one line, with literal unions spelt out and JSON's double quotes. */
  private typeText(t: ts.TypeNode): string {
    let text = t.getText().replace(/\s+/g, ' ');
    for (const [name, values] of this.literals) text = text.replace(new RegExp(`\\b${name}\\b`, 'g'), values);
    return text.replace(/'([^']*)'/g, '"$1"');
  }

  private get(name: string): ts.InterfaceDeclaration {
    const d = this.interfaces.get(name);
    if (!d) throw new Error(`no interface ${name} in the reference's sources`);
    return d;
  }
}

/** The routes a Fastify file registers (`app.get('/path', ...)` and the like), in order. */
export function routesOf(file: string): Route[] {
  const out: Route[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression) && n.expression.expression.getText() === 'app'
      && /^(get|post|put|delete|patch)$/.test(n.expression.name.text) && n.arguments[0] && ts.isStringLiteral(n.arguments[0])) {
      out.push({ method: n.expression.name.text.toUpperCase(), path: n.arguments[0].text });
    }
    ts.forEachChild(n, visit);
  };
  visit(parse(file));
  return out;
}
