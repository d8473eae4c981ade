/**
 * HTML rendering of the report blocks as one self-contained file: styles and SVG charts inline.
 */
import type { Block } from './document.js';

const STYLE = `
body { font-family: 'DejaVu Sans', system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
blockquote { border-left: 4px solid #bbb; margin: 1em 0; padding: 0.2em 1em; color: #444; }
figure { margin: 1.5em 0; }
figure svg { max-width: 100%; height: auto; }
`;

/** Renders blocks to an HTML document; `svgByChart` maps each chart name to its SVG markup. */
export function renderHtml(blocks: readonly Block[], svgByChart: ReadonlyMap<string, string>, title: string): string {
  const body = blocks.map((block) => {
    switch (block.kind) {
      case 'heading':
        return `<h${block.level}>${escapeHtml(block.text)}</h${block.level}>`;
      case 'paragraph':
        return `<p>${inline(block.text)}</p>`;
      case 'quote':
        return `<blockquote>${inline(block.text)}</blockquote>`;
      case 'list':
        return `<ul>${block.items.map((item) => `<li>${inline(item)}</li>`).join('')}</ul>`;
      case 'table': {
        const head = `<tr>${block.headers.map((cell) => `<th>${inline(cell)}</th>`).join('')}</tr>`;
        const rows = block.rows.map((row) => `<tr>${row.map((cell) => `<td>${inline(cell)}</td>`).join('')}</tr>`);
        return `<table>${head}${rows.join('')}</table>`;
      }
      case 'chart': {
        const svg = svgByChart.get(block.name);
        if (svg === undefined) throw new Error(`renderHtml: no SVG for chart "${block.name}".`);
        return `<figure aria-label="${escapeHtml(block.title)}">${scopeIds(stripXmlDeclaration(svg), block.name)}</figure>`;
      }
    }
  });
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    `<head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head>`,
    `<body>\n${body.join('\n')}\n</body>`,
    '</html>',
    '',
  ].join('\n');
}

/** Escapes text for HTML, then turns Markdown `**bold**` into `<strong>`. */
function inline(text: string): string {
  return escapeHtml(text).replace(/\*\*(.+?)\*\*/g, '<strong>$1</strong>');
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * Prefixes every element id of an SVG, and the references to it, with the chart name: SVGs inlined
 * in one HTML document share one id namespace, so two charts with a `gradient_1` would clash.
 */
function scopeIds(svg: string, prefix: string): string {
  return svg
    .replace(/\bid="([^"]+)"/g, `id="${prefix}-$1"`)
    .replace(/url\(#([^)]+)\)/g, `url(#${prefix}-$1)`)
    .replace(/href="#([^"]+)"/g, `href="#${prefix}-$1"`);
}

function stripXmlDeclaration(svg: string): string {
  return svg.replace(/^<\?xml[^>]*>\s*/, '');
}
