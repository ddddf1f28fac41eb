from fedrai.cli import main

main()
