% rebase('layout', title='Item {}'.format(number))
<p>{{number}} doubled is {{double}}.</p>
