package loadtest

import (
	"fmt"
	"image/color"
	"io"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Plot colours: deliveries and p50 blue, p99 red, RSS green, connects
// purple, storm markers grey (storm) and orange (all back).
var (
	colBlue   = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	colRed    = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	colGreen  = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
	colPurple = color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}
	colGrey   = color.RGBA{R: 0x55, G: 0x55, B: 0x55, A: 0xff}
	colOrange = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
)

// WritePlotFile writes [WritePlot]'s PNG to path.
func WritePlotFile(path string, rep *Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("loadtest: plot: %w", err)
	}
	if err := WritePlot(f, rep); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// WritePlot draws rep's time series as a PNG, four panels over the run's
// seconds: delivered msgs/s; p50 and p99 latency; server RSS; websocket
// opens per second. A storm is marked by a vertical line at its instant and
// one when every client was back.
func WritePlot(w io.Writer, rep *Report) error {
	if len(rep.Series) == 0 {
		return fmt.Errorf("loadtest: plot: the report has no samples")
	}
	specs := []panelSpec{
		{"delivered msgs/s", "msgs/s", []series{{"delivered", colBlue, func(s Sample) float64 { return s.DeliveredPerSec }}}},
		{"latency (frames of each second)", "ms", []series{
			{"p50", colBlue, func(s Sample) float64 { return s.P50ms }},
			{"p99", colRed, func(s Sample) float64 { return s.P99ms }},
		}},
		{"server RSS", "MiB", []series{{"rss", colGreen, func(s Sample) float64 { return s.ServerRSSMiB }}}},
		{"websocket opens/s", "opens/s", []series{{"opens", colPurple, func(s Sample) float64 { return s.ConnectsPerSec }}}},
	}
	specs[0].title = plotTitle(rep) + "\n" + specs[0].title
	panels := make([]*plot.Plot, len(specs))
	for i, sp := range specs {
		p, err := sp.plot(rep)
		if err != nil {
			return err
		}
		panels[i] = p
	}
	panels[len(panels)-1].X.Label.Text = "seconds since start"
	return render(w, panels)
}

// panelSpec is one panel: a title, the unit of its y axis and its lines.
type panelSpec struct {
	title, unit string
	lines       []series
}

// series is one line of a panel.
type series struct {
	name  string
	color color.Color
	value func(Sample) float64
}

// plot draws the panel's lines over rep's samples, and the storm markers.
func (sp panelSpec) plot(rep *Report) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = sp.title
	p.Y.Label.Text = sp.unit
	p.Y.Min = 0
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	for _, s := range sp.lines {
		xys := make(plotter.XYs, len(rep.Series))
		for i, smp := range rep.Series {
			xys[i] = plotter.XY{X: smp.T, Y: s.value(smp)}
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("loadtest: plot: %w", err)
		}
		l.Color, l.Width = s.color, vg.Points(1.2)
		p.Add(l)
		if len(sp.lines) > 1 {
			p.Legend.Add(s.name, l)
		}
	}
	if st := rep.Storm; st != nil {
		p.Add(vline{x: st.AtSeconds, color: colGrey})
		if st.AllBack {
			p.Add(vline{x: st.AtSeconds + st.BackSeconds, color: colOrange})
		}
	}
	return p, nil
}

// render lays the panels out one above the other and encodes the PNG.
func render(w io.Writer, panels []*plot.Plot) error {
	img := vgimg.New(vg.Points(720), vg.Points(220*float64(len(panels))))
	dc := draw.New(img)
	rows := make([][]*plot.Plot, len(panels))
	for i, p := range panels {
		rows[i] = []*plot.Plot{p}
	}
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadY: vg.Points(8), PadTop: vg.Points(6),
		PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(12)}
	canvases := plot.Align(rows, tiles, dc)
	for i, p := range panels {
		p.Draw(canvases[i][0])
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
		return fmt.Errorf("loadtest: plot: %w", err)
	}
	return nil
}

// plotTitle names the run.
func plotTitle(rep *Report) string {
	if st := rep.Storm; st != nil {
		return fmt.Sprintf("teragate bench: storm (%s), %d clients: grey = storm, orange = all back after %.2fs",
			st.Mode, st.Clients, st.BackSeconds)
	}
	return fmt.Sprintf("teragate bench: %s, %d clients, %s events", rep.Target, rep.Clients, rep.Event)
}

// vline is a vertical dashed line at x across a panel.
type vline struct {
	x     float64
	color color.Color
}

// Plot implements plot.Plotter.
func (v vline) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	x := trX(v.x)
	style := draw.LineStyle{Color: v.color, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(4), vg.Points(3)}}
	c.StrokeLine2(style, x, c.Min.Y, x, c.Max.Y)
}
