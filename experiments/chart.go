package experiments

import (
	"cmp"
	"image/color"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Chart draws a run's steps on its time line (milliseconds since the
// run's first mark) as a PNG.
func Chart(path, kind string, r Run) error {
	p := plot.New()
	p.Title.Text = kind + ": steps of " + r.Name
	p.X.Label.Text = "ms since the first step began"
	steps := Steps(kind)
	var names []string
	for i := len(steps) - 1; i >= 0; i-- {
		names = append(names, steps[i][len("Time for "):])
	}
	p.NominalY(names...)
	for i := range steps {
		if !r.Found[i] {
			continue
		}
		y := float64(len(steps) - 1 - i)
		from := float64(r.Marks[i][0].Sub(r.Start).Microseconds()) / 1000
		to := float64(r.Marks[i][1].Sub(r.Start).Microseconds()) / 1000
		if to-from < 0.5 {
			to = from + 0.5 // visible, however short
		}
		l, err := plotter.NewLine(plotter.XYs{{X: from, Y: y}, {X: to, Y: y}})
		if err != nil {
			return err
		}
		l.LineStyle = draw.LineStyle{Color: palette[i%len(palette)], Width: vg.Points(9)}
		p.Add(l)
	}
	p.Y.Padding = vg.Points(12)
	return p.Save(22*vg.Centimeter, vg.Length(6+len(steps))*vg.Centimeter/2, path)
}

var palette = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xff, 0x7f, 0x0e, 0xff}, color.RGBA{0x2c, 0xa0, 0x2c, 0xff},
	color.RGBA{0xd6, 0x27, 0x28, 0xff}, color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0x8c, 0x56, 0x4b, 0xff},
	color.RGBA{0xe3, 0x77, 0xc2, 0xff},
}

func sortOriginal(evs []OriginalEvent) {
	slices.SortStableFunc(evs, func(a, b OriginalEvent) int { return cmp.Compare(a.Time, b.Time) })
}
