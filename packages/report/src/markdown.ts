/**
 * Markdown rendering of the report blocks, with charts as PNG images so code hosts show them.
 */
import type { Block } from './document.js';

/** Renders blocks to Markdown; a chart becomes `![title](chartsPath/name.png)`. */
export function renderMarkdown(blocks: readonly Block[], chartsPath: string): string {
  const parts = blocks.map((block) => {
    switch (block.kind) {
      case 'heading':
        return `${'#'.repeat(block.level)} ${block.text}`;
      case 'paragraph':
        return block.text;
      case 'quote':
        return `> ${block.text}`;
      case 'list':
        return block.items.map((item) => `- ${item}`).join('\n');
      case 'table':
        return [
          tableRow(block.headers),
          tableRow(block.headers.map(() => '---')),
          ...block.rows.map((row) => tableRow(row)),
        ].join('\n');
      case 'chart':
        return `![${block.title}](${chartsPath}/${block.name}.png)`;
    }
  });
  return `${parts.join('\n\n')}\n`;
}

function tableRow(cells: readonly string[]): string {
  return `| ${cells.map((cell) => cell.replace(/\|/g, '\\|').replace(/\n/g, ' ')).join(' | ')} |`;
}
