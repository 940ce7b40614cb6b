// Small charts drawn on a canvas: a bar per second (Live) and lines per series (Schedule).
const COLORS = ["#2f6fd0", "#d0602f", "#2f9d5a", "#8a4fc7", "#c7a12f", "#2fa6b8"];

function frame(canvas) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  ctx.font = "11px sans-serif";
  return { ctx, width, height };
}

export function barChart(canvas, values, label) {
  const { ctx, width, height } = frame(canvas);
  const top = Math.max(1, ...values);
  const w = width / Math.max(values.length, 1);
  ctx.fillStyle = COLORS[0];
  values.forEach((v, i) => {
    const h = ((height - 14) * v) / top;
    ctx.fillRect(i * w + 1, height - h, Math.max(1, w - 2), h);
  });
  ctx.fillStyle = "#555";
  ctx.fillText(`${label}: max ${top.toLocaleString()}/s`, 4, 11);
}

// series: Map name -> array of numbers (oldest first)
export function lineChart(canvas, series) {
  const { ctx, width, height } = frame(canvas);
  let top = 1;
  let longest = 2;
  for (const values of series.values()) {
    top = Math.max(top, ...values);
    longest = Math.max(longest, values.length);
  }
  const x = (i) => (width * i) / (longest - 1);
  const y = (v) => height - 2 - ((height - 16) * v) / top;
  let n = 0;
  let legend = 4;
  for (const [name, values] of series) {
    const color = COLORS[n++ % COLORS.length];
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    values.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
    ctx.stroke();
    ctx.fillStyle = color;
    const text = `${name} ${values.at(-1) ?? 0}/s`;
    ctx.fillText(text, legend, 11);
    legend += ctx.measureText(text).width + 12;
  }
  ctx.fillStyle = "#999";
  ctx.fillText(`max ${top.toLocaleString()}`, width - 70, height - 4);
}
