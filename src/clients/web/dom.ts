/** A few DOM helpers. User data only ever reaches the page as text nodes, never as HTML. */

export interface ElProps {
  class?: string;
  text?: string;
  attrs?: Record<string, string>;
}

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: ElProps = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (props.class) node.className = props.class;
  if (props.text !== undefined) node.textContent = props.text;
  for (const [name, value] of Object.entries(props.attrs ?? {})) node.setAttribute(name, value);
  for (const child of children) node.append(typeof child === "string" ? document.createTextNode(child) : child);
  return node;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`missing #${id} in index.html`);
  return node as T;
}

/** A stable colour per name, so a person looks the same in every room and tab. */
export function colorFor(name: string): string {
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)!) | 0;
  return `hsl(${Math.abs(hash) % 360} 55% 45%)`;
}

export function avatar(name: string): HTMLElement {
  const node = el("div", { class: "avatar", text: [...name][0]?.toUpperCase() ?? "?", attrs: { "aria-hidden": "true" } });
  node.style.background = colorFor(name);
  return node;
}
