// uPlot's style sheet as text (esbuild's `with { type: 'text' }`): chart.tsx puts it in the page itself.
declare module 'uplot/dist/uPlot.min.css' {
  const css: string;
  export default css;
}
