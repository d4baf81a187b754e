/**
 * The inline stylesheet and scripts of report.html: the file must open from a CI artifact or a mail
 * attachment with no network, so nothing is fetched at view time.
 */

export const STATUS_COLORS: Record<string, { bg: string; fg: string }> = {
  PASS: { bg: '#2e9d4a', fg: '#fff' },
  XFAIL: { bg: '#2b8fa8', fg: '#fff' },
  XPASS: { bg: '#e0b400', fg: '#222' },
  FAIL: { bg: '#d12f2f', fg: '#fff' },
  ERROR: { bg: '#a8329e', fg: '#fff' },
  SKIP: { bg: '#9aa0a6', fg: '#222' },
};

/** Timing-bar colours: boot and setup fixed, the steps cycling through the rest. */
export const SEGMENT_COLORS = ['#5b8def', '#f29e4c', '#8e6fd8', '#48b89f', '#e66f8f', '#a3b84a', '#d9834a', '#4aa3d9'];
export const BOOT_COLOR = '#7d8590';
export const SETUP_COLOR = '#3d5a80';

const statusRules = Object.entries(STATUS_COLORS)
  .map(([s, c]) => `.s-${s}{background:${c.bg};color:${c.fg}}`)
  .join('\n');

export const CSS = `
:root{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;font-size:14px;color:#1f2328;background:#fff}
body{margin:0 auto;padding:1em 1.5em 3em;max-width:1400px}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin:1.4em 0 .5em;border-bottom:1px solid #d0d7de}
a{color:#0b5cad}
code,pre,.mono{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,monospace;font-size:12.5px}
pre{background:#f6f8fa;border:1px solid #d0d7de;padding:.6em;overflow:auto;max-height:30em;white-space:pre}
table{border-collapse:collapse}
th,td{border:1px solid #d0d7de;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f6f8fa}
.st{display:inline-block;min-width:3.8em;text-align:center;border-radius:3px;padding:0 .3em;font-weight:600;font-size:12px}
${statusRules}
.meta{color:#57606a}
.totals .st{margin-right:.2em}
table.grid td.cell{padding:0;min-width:7.5em}
table.grid td.cell a{display:block;padding:.5em .6em;color:inherit;text-decoration:none}
table.grid td.cell a:hover{outline:3px solid #1f2328;outline-offset:-3px}
table.grid td.none{background:#f6f8fa;color:#8c959f;text-align:center}
table.grid .count{display:block;font-size:11px;opacity:.9}
table.grid th.axis{font-weight:400;color:#57606a}
details.cell{border:1px solid #d0d7de;border-radius:4px;margin:.5em 0;padding:.2em .6em}
details.cell>summary{cursor:pointer;padding:.3em 0;font-weight:600}
details.cell[open]>summary{border-bottom:1px solid #d0d7de;margin-bottom:.5em}
details.step{margin:.15em 0 .15em .5em}
details.step>summary{cursor:pointer}
.bar{display:flex;height:14px;background:#eaeef2;border-radius:2px;overflow:hidden;margin:.2em 0}
.bar span{display:block;height:100%;min-width:1px;border-right:1px solid #fff;box-sizing:border-box}
.legend span.key{display:inline-block;width:.8em;height:.8em;margin:0 .2em 0 .6em;vertical-align:middle}
.grid-bars td{border:none;padding:.1em .4em}
table.checks td.v{font-family:ui-monospace,monospace}
table.db td{font-family:ui-monospace,monospace;text-align:center}
table.db td small{display:block;font-size:10.5px;opacity:.85}
.hide-pass tr.s-PASS,.hide-pass table.checks tr.r-PASS{display:none}
.toolbar button{margin-right:.4em}
.msg{white-space:pre-wrap}
#js-errors{color:#d12f2f}
`;

/** Runs first: any later script error ends up in the DOM (and in --dump-dom), not only in a console. */
export const ERROR_TRAP = `
(function(){var list=[];function note(t){list.push(String(t));document.documentElement.setAttribute('data-js-errors',String(list.length));var p=document.getElementById('js-errors');if(p)p.textContent=list.join('\\n');}
window.addEventListener('error',function(e){note('error: '+(e.message||e.type)+' at '+(e.filename||'')+':'+(e.lineno||0));});
window.addEventListener('unhandledrejection',function(e){note('unhandled rejection: '+(e.reason&&e.reason.message||e.reason));});})();
`;

/** Opens the cell a grid link or the URL's #hash names; expand/collapse all; hide passing checks. */
export const SCRIPT = `
(function(){
function openTarget(id){if(!id)return;var el=document.getElementById(id);if(!el)return;var d=el;while(d){if(d.tagName==='DETAILS')d.open=true;d=d.parentElement;}el.scrollIntoView();}
function fromHash(){openTarget(decodeURIComponent(location.hash.slice(1)));}
window.addEventListener('hashchange',fromHash);
document.querySelectorAll('a[href^="#"]').forEach(function(a){a.addEventListener('click',function(){openTarget(decodeURIComponent(a.getAttribute('href').slice(1)));});});
function all(open){document.querySelectorAll('details.cell,details.step').forEach(function(d){d.open=open;});}
var ex=document.getElementById('expand-all'),co=document.getElementById('collapse-all'),hp=document.getElementById('hide-pass');
if(ex)ex.addEventListener('click',function(){all(true);});
if(co)co.addEventListener('click',function(){all(false);});
if(hp)hp.addEventListener('click',function(){var on=document.body.classList.toggle('hide-pass');hp.textContent=on?'show passing checks':'hide passing checks';});
fromHash();
var cells=document.querySelectorAll('table.grid td.cell');
document.documentElement.setAttribute('data-ready',String(cells.length));
})();
`;
