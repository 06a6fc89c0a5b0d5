// Terraform's language (HCL) read the way Terraform reads it, for tests that hold the Terraform
// module in infra/terraform to the tool: the files are parsed by tree-sitter's HCL grammar
// (web-tree-sitter runs it from WebAssembly, so nothing is compiled or downloaded) and the
// expressions the module uses are evaluated here: literals, templates, tuples, objects,
// references to variables, locals and dynamic-block iterators, ==/!=, ! and conditionals.
// Anything else (a function call, a resource attribute) throws, naming it: a module change this
// evaluator cannot follow fails the test instead of passing unread.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Language, Parser, type Node } from 'web-tree-sitter';

export type Value = string | number | boolean | null | Value[] | { [k: string]: Value };

/** A block after evaluation: dynamic blocks expanded (one block per element of for_each). */
export interface Block {
  type: string;
  labels: string[];
  attrs: Record<string, Value>;
  blocks: Block[];
}

let parser: Promise<Parser> | undefined;
function hclParser(): Promise<Parser> {
  return (parser ??= (async () => {
    await Parser.init();
    const wasm = createRequire(import.meta.url).resolve('@tree-sitter-grammars/tree-sitter-hcl/tree-sitter-hcl.wasm');
    const p = new Parser();
    p.setLanguage(await Language.load(wasm));
    return p;
  })());
}

/** The syntax tree of an HCL file; a syntax error throws, with its line. */
export async function parseHcl(file: string): Promise<Node> {
  const tree = (await hclParser()).parse(readFileSync(file, 'utf8'));
  if (!tree) throw new Error(`${file}: not parsed`);
  const root = tree.rootNode;
  if (root.hasError) {
    const bad = firstError(root)!;
    throw new Error(`${file}:${bad.startPosition.row + 1}:${bad.startPosition.column + 1}: HCL syntax error near ${JSON.stringify(bad.text.slice(0, 40))}`);
  }
  return root;
}

function firstError(n: Node): Node | null {
  if (n.isError || n.isMissing) return n;
  for (const c of n.children) {
    const e = c && firstError(c);
    if (e) return e;
  }
  return null;
}

const named = (n: Node): Node[] => n.namedChildren.filter((c): c is Node => c !== null && c.type !== 'comment');
const child = (n: Node, type: string): Node | undefined => named(n).find((c) => c.type === type);

/** The top-level blocks of a parsed file (unevaluated). */
export function topBlocks(root: Node): Node[] {
  const body = child(root, 'body');
  return body ? named(body).filter((c) => c.type === 'block') : [];
}

export function blockType(b: Node): string {
  return child(b, 'identifier')!.text;
}

export function blockLabels(b: Node): string[] {
  return named(b)
    .filter((c) => c.type === 'string_lit' || c.type === 'identifier')
    .slice(1)
    .map((c) => (c.type === 'string_lit' ? stringLit(c) : c.text));
}

/** The attribute `name` of a block's body, unevaluated. */
export function attrExpr(block: Node, name: string): Node | undefined {
  const body = child(block, 'body');
  const a = body && named(body).find((c) => c.type === 'attribute' && child(c, 'identifier')!.text === name);
  return a && child(a, 'expression');
}

/** What names mean: `var.x`, `local.x` (evaluated when used) and dynamic-block iterators. */
export interface Scope {
  vars: Record<string, Value>;
  locals: Record<string, Node>;
  iterators?: Record<string, { key: Value; value: Value }>;
}

export function evaluate(expr: Node, scope: Scope): Value {
  switch (expr.type) {
    case 'expression':
      return chain(named(expr), scope);
    case 'literal_value': {
      const v = named(expr)[0]!;
      if (v.type === 'numeric_lit') return Number(v.text);
      if (v.type === 'bool_lit') return v.text === 'true';
      if (v.type === 'null_lit') return null;
      if (v.type === 'string_lit') return stringLit(v, scope);
      break;
    }
    case 'template_expr': {
      const t = named(expr)[0]!;
      if (t.type === 'quoted_template') return stringLit(t, scope);
      break;
    }
    case 'collection_value': {
      const c = named(expr)[0]!;
      if (c.type === 'tuple') return named(c).filter((e) => e.type === 'expression').map((e) => evaluate(e, scope));
      if (c.type === 'object') {
        const out: Record<string, Value> = {};
        for (const el of named(c).filter((e) => e.type === 'object_elem')) {
          const [k, v] = named(el).filter((e) => e.type === 'expression');
          // A bare name as a key is the name itself, not a reference.
          const bare = named(k!).length === 1 && named(k!)[0]!.type === 'variable_expr';
          const key = bare ? named(k!)[0]!.text : evaluate(k!, scope);
          if (typeof key !== 'string' && typeof key !== 'number') throw new Error(`an object key that is not a string: ${k!.text}`);
          out[String(key)] = evaluate(v!, scope);
        }
        return out;
      }
      break;
    }
    case 'conditional': {
      const [c, a, b] = named(expr);
      const cond = evaluate(c!, scope);
      if (typeof cond !== 'boolean') throw new Error(`a condition that is not a bool: ${c!.text}`);
      return evaluate(cond ? a! : b!, scope);
    }
    case 'operation':
      return operation(named(expr)[0]!, scope);
    case 'tuple':
    case 'object':
      break;
  }
  throw new Error(`the test's HCL evaluator does not read ${expr.type}: ${expr.text}`);
}

function operation(op: Node, scope: Scope): Value {
  const parts = op.children.filter((c): c is Node => c !== null);
  if (op.type === 'unary_operation' && parts[0]!.text === '!') {
    const v = chain(parts.slice(1).filter((c) => c.isNamed), scope);
    if (typeof v !== 'boolean') throw new Error(`! of a value that is not a bool: ${op.text}`);
    return !v;
  }
  if (op.type === 'binary_operation') {
    const i = parts.findIndex((c) => !c.isNamed && (c.type === '==' || c.type === '!='));
    if (i > 0) {
      const eq = JSON.stringify(chain(parts.slice(0, i), scope)) === JSON.stringify(chain(parts.slice(i + 1), scope));
      return parts[i]!.type === '==' ? eq : !eq;
    }
  }
  throw new Error(`the test's HCL evaluator does not read the operation ${op.text}`);
}

/** A primary expression and its attribute accesses: `var.prefix`, `rule.key`, `local.tier_days`. */
function chain(nodes: Node[], scope: Scope): Value {
  const [head, ...rest] = nodes;
  if (!head) throw new Error('an empty expression');
  if (head.type !== 'variable_expr') {
    if (rest.length) throw new Error(`the test's HCL evaluator does not read ${nodes.map((n) => n.text).join('')}`);
    return evaluate(head, scope);
  }
  const names = rest.map((g) => {
    if (g.type !== 'get_attr') throw new Error(`the test's HCL evaluator does not read ${g.type}: ${g.text}`);
    return child(g, 'identifier')!.text;
  });
  const root = head.text;
  let v: Value;
  if (root === 'var' || root === 'local') {
    const name = names.shift();
    if (name === undefined) throw new Error(`${root} alone`);
    if (root === 'var') {
      if (!(name in scope.vars)) throw new Error(`var.${name}: no such variable, or no value for it`);
      v = scope.vars[name]!;
    } else {
      if (!(name in scope.locals)) throw new Error(`local.${name}: no such local value`);
      v = evaluate(scope.locals[name]!, scope);
    }
  } else if (scope.iterators && root in scope.iterators) {
    v = scope.iterators[root] as unknown as Value;
  } else {
    throw new Error(`the test's HCL evaluator does not know ${[root, ...names].join('.')}`);
  }
  for (const n of names) {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || !(n in v)) throw new Error(`no attribute ${n} in ${head.text}`);
    v = v[n]!;
  }
  return v;
}

/** A quoted string or template: its literal parts and interpolations, escapes undone. */
function stringLit(n: Node, scope?: Scope): string {
  let out = '';
  for (const p of named(n)) {
    if (p.type === 'template_literal') out += unescape(p.text);
    else if (p.type === 'template_interpolation') {
      if (!scope) throw new Error(`an interpolation where none can be: ${n.text}`);
      const v = evaluate(child(p, 'expression')!, scope);
      if (typeof v === 'object' && v !== null) throw new Error(`a collection in a template: ${p.text}`);
      out += String(v);
    } else if (p.type !== 'quoted_template_start' && p.type !== 'quoted_template_end') {
      throw new Error(`the test's HCL evaluator does not read ${p.type} in a string: ${n.text}`);
    }
  }
  return out;
}

function unescape(s: string): string {
  return s.replace(/\\(.)/g, (_m, c: string) => {
    const map: Record<string, string> = { n: '\n', t: '\t', r: '\r', '"': '"', '\\': '\\' };
    if (!(c in map)) throw new Error(`the test's HCL evaluator does not read the escape \\${c}`);
    return map[c]!;
  });
}

/**
 * A block's body evaluated: attributes, and nested blocks with `dynamic "x"` blocks expanded
 * the way Terraform does: one block per element of for_each (a map in the order of its keys,
 * which Terraform sorts), the iterator named after the block (or `iterator`).
 */
export function evalBlock(b: Node, scope: Scope): Block {
  const out: Block = { type: blockType(b), labels: blockLabels(b), attrs: {}, blocks: [] };
  const body = child(b, 'body');
  for (const c of body ? named(body) : []) {
    if (c.type === 'attribute') out.attrs[child(c, 'identifier')!.text] = evaluate(child(c, 'expression')!, scope);
    else if (c.type === 'block' && blockType(c) === 'dynamic') out.blocks.push(...expandDynamic(c, scope));
    else if (c.type === 'block') out.blocks.push(evalBlock(c, scope));
    else throw new Error(`the test's HCL evaluator does not read ${c.type} in a block body: ${c.text}`);
  }
  return out;
}

/** The nested blocks of one type (dynamic ones expanded), leaving the block's attributes unread. */
export function nestedBlocks(b: Node, type: string, scope: Scope): Block[] {
  const body = child(b, 'body');
  const out: Block[] = [];
  for (const c of body ? named(body).filter((x) => x.type === 'block') : []) {
    if (blockType(c) === type) out.push(evalBlock(c, scope));
    else if (blockType(c) === 'dynamic' && blockLabels(c)[0] === type) out.push(...expandDynamic(c, scope));
  }
  return out;
}

function expandDynamic(d: Node, scope: Scope): Block[] {
  const [label] = blockLabels(d);
  const forEach = evaluate(attrExpr(d, 'for_each')!, scope);
  const it = attrExpr(d, 'iterator');
  const name = it ? it.text : label!;
  const content = named(child(d, 'body')!).find((c) => c.type === 'block' && blockType(c) === 'content');
  if (!content) throw new Error(`dynamic "${label}" without a content block`);
  let items: Array<{ key: Value; value: Value }>;
  if (Array.isArray(forEach)) items = forEach.map((value, key) => ({ key, value }));
  else if (forEach && typeof forEach === 'object')
    items = Object.keys(forEach)
      .sort()
      .map((key) => ({ key, value: forEach[key]! }));
  else throw new Error(`dynamic "${label}": for_each is not a collection`);
  return items.map((item) => ({ ...evalBlock(content, { ...scope, iterators: { ...scope.iterators, [name]: item } }), type: label!, labels: [] }));
}
