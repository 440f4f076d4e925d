package chatlayertest

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
	"math"
	"net/http"
	"strconv"
	"sync"
)

// The media the scripted bot links to are served by the emulator itself,
// so that tests and local tries never reach the internet. The video is a
// placeholder (a few bytes labelled video/mp4): the proxy only checks and
// forwards URLs, and a real clip would be dead weight in the repository.
var (
	assetsOnce sync.Once
	assets     map[string]asset
)

type asset struct {
	ctype string
	data  []byte
}

func serveAsset(w http.ResponseWriter, r *http.Request) {
	assetsOnce.Do(makeAssets)
	a, ok := assets[r.PathValue("name")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(a.data)))
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(a.data)
}

func makeAssets() {
	assets = map[string]asset{
		"rose.png":   {"image/png", gradientPNG(240, 160)},
		"tone.wav":   {"audio/wav", toneWAV(440, 8000, 0.5)},
		"clip.mp4":   {"video/mp4", []byte("placeholder video from the Chatlayer emulator\n")},
		"readme.txt": {"text/plain; charset=utf-8", []byte("A file sent by the emulated Chatlayer bot.\n")},
	}
}

// gradientPNG draws a teal-to-blue gradient.
func gradientPNG(w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{R: uint8(20 + 40*x/w), G: uint8(110 - 60*y/h), B: uint8(140 + 100*x/w), A: 255})
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return buf.Bytes()
}

// toneWAV renders a sine tone as 8-bit mono PCM in a WAV container.
func toneWAV(freq float64, rate int, seconds float64) []byte {
	n := int(float64(rate) * seconds)
	var buf bytes.Buffer
	le := func(v any) { _ = binary.Write(&buf, binary.LittleEndian, v) }
	buf.WriteString("RIFF")
	le(uint32(36 + n))
	buf.WriteString("WAVEfmt ")
	le(uint32(16))
	le(uint16(1)) // PCM
	le(uint16(1)) // mono
	le(uint32(rate))
	le(uint32(rate)) // byte rate
	le(uint16(1))    // block align
	le(uint16(8))    // bits per sample
	buf.WriteString("data")
	le(uint32(n))
	for i := range n {
		buf.WriteByte(uint8(128 + 60*math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
	}
	return buf.Bytes()
}
