package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

const adminUsage = `Usage: porthole admin [--url URL] COMMAND [flags]

Calls the admin API of a running server (admin.listen, with admin_token).
The token comes from the environment, PORTHOLE_ADMIN_TOKEN, never from a
flag (a flag would show in the process list). --url defaults to
PORTHOLE_ADMIN_URL, or http://127.0.0.1:9090.

Commands:
  conversations BOT [--limit N] [--after CURSOR]   list BOT's conversations, newest first (JSON; "next" pages on)
  show CONVERSATION                                everything held about one conversation (JSON)
  export BOT --visitor ID | --token TOKEN | --user ID
                                                   everything held about a visitor or a signed-in user (GDPR art. 15)
  erase BOT --visitor ID | --token TOKEN | --user ID --yes
                                                   delete it (GDPR art. 17); the platform keeps its own copy
`

// admin runs 'porthole admin': a thin client of the admin API that
// prints its JSON answers to stdout.
func admin(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("admin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, adminUsage) }
	base := fs.String("url", envOr("PORTHOLE_ADMIN_URL", "http://127.0.0.1:9090"), "the admin listener's URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("admin: name a command")
	}
	token := os.Getenv("PORTHOLE_ADMIN_TOKEN")
	if token == "" {
		return errors.New("admin: set PORTHOLE_ADMIN_TOKEN to the server's admin_token")
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	sub := flag.NewFlagSet("admin "+cmd, flag.ContinueOnError)
	sub.SetOutput(stderr)
	sub.Usage = func() { fmt.Fprint(stderr, adminUsage) }
	limit := sub.Int("limit", 50, "conversations per page")
	after := sub.String("after", "", "the next cursor of an earlier page")
	visitor := sub.String("visitor", "", "a visitor id")
	vtoken := sub.String("token", "", "a visitor token, as the widget keeps it")
	user := sub.String("user", "", "a signed-in user's id")
	yes := sub.Bool("yes", false, "erase without asking again")
	var positional []string
	for len(rest) > 0 { // flags may come after the positional argument
		if err := sub.Parse(rest); err != nil {
			return err
		}
		if sub.NArg() == 0 {
			break
		}
		positional, rest = append(positional, sub.Arg(0)), sub.Args()[1:]
	}
	arg := func(what string) (string, error) {
		if len(positional) != 1 {
			return "", fmt.Errorf("admin %s: name one %s", cmd, what)
		}
		return url.PathEscape(positional[0]), nil
	}
	subject := func() (url.Values, error) {
		q := url.Values{}
		for k, v := range map[string]string{"visitor": *visitor, "token": *vtoken, "user": *user} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if len(q) == 0 {
			return nil, fmt.Errorf("admin %s: name whose data: --visitor ID, --token TOKEN or --user ID", cmd)
		}
		return q, nil
	}
	method, path, q := http.MethodGet, "", url.Values{}
	switch cmd {
	case "conversations":
		bot, err := arg("bot")
		if err != nil {
			return err
		}
		path = "/admin/v1/bots/" + bot + "/conversations"
		q.Set("limit", fmt.Sprint(*limit))
		if *after != "" {
			q.Set("after", *after)
		}
	case "show":
		id, err := arg("conversation id")
		if err != nil {
			return err
		}
		path = "/admin/v1/conversations/" + id
	case "export", "erase":
		bot, err := arg("bot")
		if err != nil {
			return err
		}
		if q, err = subject(); err != nil {
			return err
		}
		path = "/admin/v1/bots/" + bot + "/" + cmd
		if cmd == "erase" {
			if !*yes {
				return errors.New("admin erase: this deletes the visitor's conversations for good; add --yes")
			}
			method = http.MethodPost
		}
	default:
		fs.Usage()
		return fmt.Errorf("admin: unknown command %q", cmd)
	}
	u := strings.TrimRight(*base, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return fmt.Errorf("admin: --url: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return fmt.Errorf("admin: %w (is admin.listen set, and the server running?)", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin %s: %s: %s", cmd, resp.Status, strings.TrimSpace(string(body)))
	}
	_, err = stdout.Write(body)
	return err
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
