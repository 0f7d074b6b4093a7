{ 'targets': [] }
