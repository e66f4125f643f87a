// Performance marks the console leaves for scripts/bench-console (and anyone profiling):
// `<name>-data` when the API's answer is in, `<name>-painted` after the frame that shows
// it has been painted (a requestAnimationFrame, then a task after it).
export function markData(name: string) {
  performance.mark(`${name}-data`);
}

export function markPainted(name: string) {
  requestAnimationFrame(() =>
    setTimeout(() => {
      performance.mark(`${name}-painted`);
      document.body.dataset[`${name}Painted`] = "1";
    }, 0),
  );
}
