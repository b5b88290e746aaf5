# Sourced by run.sh and demo.sh: `make_greeter DIR` makes the demo repository (one commit on
# main: greet.py and README.md) in DIR.
make_greeter() {
  mkdir -p "$1"
  (
    cd "$1"
    git init -q -b main
    cat > greet.py <<'PY'
def greet(name):
    return "Hello, " + name


if __name__ == "__main__":
    print(greet("world"))
PY
    printf '# greeter\nA tiny program that greets people.\n' > README.md
    git add -A
    git -c user.name=Demo -c user.email=demo@example.com commit -qm "greeter"
  )
}
