/**
 * Maps a path into the parsed data back to the YAML node it came from, and renders the eemeli/yaml-style
 * `file:line:col: message` + source line + caret that scenario errors show.
 */
import { isMap, isScalar, isSeq, LineCounter, Scalar, type Document, type Node, type Pair } from 'yaml';

export interface SourcePosition {
  line: number;
  col: number;
}

export interface LocateOptions {
  /** Point at the key of the last path segment instead of its value. */
  atKey?: boolean;
  /** A key of the node at `path` to point at (unknown keys). */
  key?: string;
  /** Column inside the scalar's text (an expression error). */
  offset?: number;
}

interface Found {
  node: Node | null;
  pair?: Pair;
  /** Path segments that did not exist in the document. */
  missing: (string | number)[];
}

function walk(doc: Document, path: readonly PropertyKey[]): Found {
  let node = doc.contents as Node | null;
  let pair: Pair | undefined;
  for (let i = 0; i < path.length; i++) {
    const segment = path[i]!;
    if (isMap(node)) {
      const next = node.items.find((item) => isScalar(item.key) && String(item.key.value) === String(segment));
      if (!next) return { node, pair, missing: path.slice(i) as (string | number)[] };
      pair = next;
      node = (next.value as Node | null) ?? (next.key as Node);
    } else if (isSeq(node) && typeof segment === 'number' && node.items[segment]) {
      pair = undefined;
      node = node.items[segment] as Node;
    } else {
      return { node, pair, missing: path.slice(i) as (string | number)[] };
    }
  }
  return { node, pair, missing: [] };
}

function scalarOffset(node: Node, offset: number): number {
  if (!isScalar(node) || !node.range) return 0;
  if (node.type === Scalar.PLAIN) return offset;
  if (node.type === Scalar.QUOTE_DOUBLE || node.type === Scalar.QUOTE_SINGLE) return offset + 1;
  return 0; // block scalars: the line of the indicator is close enough
}

/** Offset into the source text for `path`, plus the segments that were missing from the document. */
export function locate(doc: Document, path: readonly PropertyKey[], options: LocateOptions = {}): { offset: number; missing: (string | number)[] } {
  const found = walk(doc, path);
  let target: Node | null = found.node;
  let extra = 0;
  // A missing key is reported at the key of the map that lacks it ("matrix:"), not at its first entry.
  if (found.missing.length > 0 && found.pair) target = found.pair.key as Node;
  else if (options.key && isMap(found.node) && found.missing.length === 0) {
    const pair = found.node.items.find((item) => isScalar(item.key) && String(item.key.value) === options.key);
    if (pair) target = pair.key as Node;
  } else if (options.atKey && found.pair && found.missing.length === 0) {
    target = found.pair.key as Node;
  } else if (options.offset !== undefined && target && found.missing.length === 0) {
    extra = scalarOffset(target, options.offset);
  }
  return { offset: (target?.range?.[0] ?? 0) + extra, missing: found.missing };
}

export function positionOf(lineCounter: LineCounter, offset: number): SourcePosition {
  return lineCounter.linePos(offset);
}

/** `file:line:col: message`, the source line and a caret under the column. */
export function renderPosition(file: string, source: string, position: SourcePosition, message: string): string {
  const lineText = source.split(/\r?\n/)[position.line - 1] ?? '';
  const caret = `${' '.repeat(Math.max(0, position.col - 1))}^`;
  return `${file}:${position.line}:${position.col}: ${message}\n  ${lineText}\n  ${caret}`;
}
