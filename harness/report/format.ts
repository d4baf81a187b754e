/** Shared formatting for reporters: status colours, durations, text cleanup for XML and TAP. */
import pc from 'picocolors';
import stripAnsi from 'strip-ansi';
import type { CellKernel, Status, Value } from '../results/model.ts';

export type Colors = ReturnType<typeof pc.createColors>;

export function colors(enabled: boolean): Colors {
  return pc.createColors(enabled);
}

export function paintStatus(status: Status, c: Colors, text: string = status): string {
  switch (status) {
    case 'PASS':
      return c.green(text);
    case 'XFAIL':
      return c.cyan(text);
    case 'XPASS':
      return c.yellow(c.bold(text));
    case 'FAIL':
      return c.red(c.bold(text));
    case 'ERROR':
      return c.magenta(c.bold(text));
    case 'SKIP':
      return c.dim(text);
  }
}

export function duration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** XML 1.0 allows tab, LF, CR and most of the BMP; anything else is dropped. */
const XML_INVALID = /[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

export function cleanText(text: string): string {
  return stripAnsi(text).replace(XML_INVALID, '');
}

export function xmlEscape(text: string): string {
  return cleanText(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** Values as a reader expects them: masks in hex. */
export function showValue(value: Value | undefined): string {
  if (value === undefined) return '';
  if (value === null) return 'none';
  if (typeof value === 'number') return value > 9 ? `0x${value.toString(16)}` : String(value);
  if (Array.isArray(value)) return `[${value.map((v) => showValue(v)).join(', ')}]`;
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** "6.12.117 arm64, debian:6.12 + old": the release booted, the source as given and the patch sets. */
export function kernelText(kernel: CellKernel): string {
  const patches = kernel.patches.length ? ` + ${kernel.patches.join(' + ')}` : '';
  return `${kernel.release} ${kernel.arch}, ${kernel.source}${patches}`;
}
