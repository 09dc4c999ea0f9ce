// Vite inlines imported CSS into the page; TypeScript only needs to know such imports exist.
declare module '*.css';
